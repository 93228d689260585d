import { Client } from 'pg';
import { connectCommandClient } from '../src/audit/command-client';
import { sleep, TestPostgres } from './support/postgres';

// docs/FAILURES.md, "The commands' deadlines": --timeout-ms "bounds the waits on a database that
// does not answer, never the work of one that does". A server that answers the command's question
// at all is alive, and its live statement is waited out: with `track_activities = off` on the role
// (pg_stat_activity says 'disabled' for every backend) and on a role at its CONNECTION LIMIT (the
// question's own connection is refused by the server), a 3 s wait on a lock is not cut.
const TIMEOUT_MS = 500;

describe('a command on a role whose activity the server cannot report', () => {
  let db: TestPostgres;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('cli');
    await db.query('CREATE TABLE locked_rows (x integer)', [], 'cli');
    await db.query(`CREATE ROLE untracked LOGIN PASSWORD 'untracked'`, [], 'cli');
    await db.query('GRANT SELECT ON locked_rows TO untracked', [], 'cli');
    await db.query('ALTER ROLE untracked SET track_activities = off', [], 'cli');
    await db.query(`CREATE ROLE limited LOGIN PASSWORD 'limited' CONNECTION LIMIT 1`, [], 'cli');
    await db.query('GRANT SELECT ON locked_rows TO limited', [], 'cli');
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
  });

  it.each([
    ['untracked', 'track_activities off: pg_stat_activity says disabled'],
    ['limited', 'CONNECTION LIMIT 1: the question has no connection to ask it on'],
  ])(
    '%s (%s): a statement waiting 3 s on a lock (live work, 6 × --timeout-ms) is waited out, not cut',
    async (role) => {
      const locker = new Client({ connectionString: db.url('cli') });
      await locker.connect();
      const client = await connectCommandClient(db.url('cli', role, role), TIMEOUT_MS);
      try {
        await locker.query('BEGIN; LOCK TABLE locked_rows IN ACCESS EXCLUSIVE MODE');
        const release = sleep(3000).then(() => locker.query('COMMIT'));
        const outcome = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM locked_rows').then(
          (result) => ({ rows: result.rows, error: null }),
          (error: Error) => ({ rows: [], error: error.message }),
        );
        await release;
        expect(outcome).toEqual({ rows: [{ n: 0 }], error: null });
      } finally {
        await client.end().catch(() => undefined);
        await locker.end();
      }
    },
    60_000,
  );
});
