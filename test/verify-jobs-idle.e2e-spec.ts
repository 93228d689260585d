import { Client } from 'pg';
import { AuditSealer, AuditService } from '../src/audit';
import { connectCommandClient } from '../src/audit/command-client';
import { PIN_SEARCH_PATH_SQL } from '../src/audit/integrity/search-path';
import { verifyTrail } from '../src/audit/integrity/verifier';
import { eventually } from './support/app';
import { startSealingApp } from './support/integrity';
import { sleep, TestPostgres } from './support/postgres';

// docs/FAILURES.md, "The commands' deadlines": audit-verify with --jobs > 1 (the default is 4)
// hands its chunks to worker connections while its first connection, which exported the snapshot,
// sits idle in its transaction, whose idle_in_transaction_session_timeout is 3 × --timeout-ms +
// 1 s (at least 10 s). The command client sends `SELECT 1` on a connection idle in a transaction
// for a third of that limit, so a worker whose live statement lasts longer (here a 14 s wait on a
// lock, which is never cut) does not get the first connection ended by the server under it.
const TIMEOUT_MS = 1000;
const PIN_SESSION_SQL = PIN_SEARCH_PATH_SQL.replace('SET LOCAL', 'SET');

describe('audit-verify --jobs whose worker waits on a lock longer than the idle limit', () => {
  let db: TestPostgres;
  let partition: string;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('base');
    const app = await startSealingApp(db.url('base'), { integrity: { intervalMs: 3_600_000 } });
    try {
      await Promise.all(
        Array.from({ length: 30 }, (_, i) => app.get(AuditService).log({ action: 'nda_created', entityId: `n-${i}`, userId: 'alice' })),
      );
      await app.get(AuditSealer).sealNow();
    } finally {
      await app.close();
    }
    const [row] = await db.query<{ part: string }>('SELECT tableoid::regclass::text AS part FROM audit_log LIMIT 1', [], 'base');
    partition = row.part;
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
  });

  it('a verify whose worker waits 14 s on a lock (a live statement) still completes clean', async () => {
    const url = db.url('base');
    const main = await connectCommandClient(url, TIMEOUT_MS);
    const locker = new Client({ connectionString: url });
    await locker.connect();
    let locked: Promise<unknown> | undefined;
    try {
      await main.query(PIN_SESSION_SQL);
      // An operator's ALTER (or the upkeep's ACCESS EXCLUSIVE) arrives while verify runs: queued
      // behind verify's first connection, it holds the worker's read of the partition back until
      // its own lock_timeout (14 s) gives it up.
      const connect = async () => {
        const worker = await connectCommandClient(url, TIMEOUT_MS);
        await worker.query(PIN_SESSION_SQL);
        if (!locked) {
          locked = locker
            .query(`BEGIN; SET LOCAL lock_timeout = '14s'; LOCK TABLE ${partition} IN ACCESS EXCLUSIVE MODE; COMMIT`)
            .catch(() => locker.query('ROLLBACK'));
          await eventually(async () => {
            const [row] = await db.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM pg_locks WHERE relation = $1::regclass AND mode = 'AccessExclusiveLock' AND NOT granted`,
              [partition],
              'base',
            );
            return row.n === 1;
          });
        }
        return worker;
      };
      const outcome = await verifyTrail(main, { connect, jobs: 2 }).then(
        (report) => ({ rowsVerified: report.rowsVerified, anomalies: report.anomalyCount, error: null }),
        (error: Error) => ({ rowsVerified: 0, anomalies: 0, error: error.message }),
      );
      expect(outcome).toEqual({ rowsVerified: 30, anomalies: 0, error: null });
    } finally {
      await locked;
      await main.end().catch(() => undefined);
      await locker.end();
    }
  }, 90_000);

  it('a command connection idle in its transaction past the idle limit (writing its file, awaiting workers) keeps it', async () => {
    const client = await connectCommandClient(db.url('base'), TIMEOUT_MS);
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await sleep(12_000);
      const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_log');
      expect(rows).toEqual([{ n: 30 }]);
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
  }, 60_000);
});
