import { Client } from 'pg';
import { connectCommandClient } from '../src/audit/command-client';
import { sleep, TestPostgres } from './support/postgres';

// Probe (attacker A6): docs/FAILURES.md ("The commands' deadlines") promises that --timeout-ms
// "bounds the waits on a database that does not answer, never the work of one that does": a live
// statement (a wait on a lock) is waited out. The command tells work from silence by the
// `state` pg_stat_activity shows for its backend; on a server (or role) with
// `track_activities = off` that state is 'disabled' for every backend, so each live statement
// longer than --timeout-ms is taken for silence and cut (exit 3), with nothing in the docs saying
// the setting is needed. The same happens to a role at its CONNECTION LIMIT (or a server at
// max_connections): the question's own connection is refused, and the live statement is cut.
const TIMEOUT_MS = 500;

describe('probe: a command on a role whose activity is not tracked', () => {
  let db: TestPostgres;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('cli');
    await db.query('CREATE TABLE probe_locked (x integer)', [], 'cli');
    await db.query(`CREATE ROLE untracked LOGIN PASSWORD 'untracked'`, [], 'cli');
    await db.query('GRANT SELECT ON probe_locked TO untracked', [], 'cli');
    await db.query('ALTER ROLE untracked SET track_activities = off', [], 'cli');
    await db.query(`CREATE ROLE limited LOGIN PASSWORD 'limited' CONNECTION LIMIT 1`, [], 'cli');
    await db.query('GRANT SELECT ON probe_locked TO limited', [], 'cli');
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
        await locker.query('BEGIN; LOCK TABLE probe_locked IN ACCESS EXCLUSIVE MODE');
        const release = sleep(3000).then(() => locker.query('COMMIT'));
        const outcome = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM probe_locked').then(
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
