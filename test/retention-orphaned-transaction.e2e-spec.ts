import { type INestApplication } from '@nestjs/common';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { AuditSealer } from '../src/audit';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { eventually } from './support/app';
import { sealingKeys, startSealingApp } from './support/integrity';
import { insertRowsAgo, partitionAgo, trailWithPastMonths } from './support/past-months';
import { PartitionProxy } from './support/partition-proxy';
import { sleep, TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/FAILURES.md, "The commands' deadlines": audit-retention removes a month in one transaction
// that holds the sealer's lock across several round trips. Cut off by a silent partition inside it
// (the server never hears of it), it gives up within about 3 × --timeout-ms; its transaction sets
// idle_in_transaction_session_timeout (3 × --timeout-ms plus a second), so the server ends it, and
// the sealer's lock, soon after: the month is removed by the next run once the network is back,
// not after the server's TCP keepalive gives up (over two hours on Linux defaults).
const TIMEOUT_MS = 3000;

describe('audit-retention partitioned inside its transaction', () => {
  const database = 'trail';
  const keys = sealingKeys();
  let db: TestPostgres;
  let proxy: PartitionProxy;
  let app: INestApplication | undefined;
  let blocker: Client | undefined;
  let stderr: StderrCapture | undefined;
  let dir: string;
  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  const retention = async (url: string) => {
    const out: string[] = [];
    const code = await runRetention(
      ['--url', url, '--signing-key', join(dir, 'seal.key'), '--months', '1', '--timeout-ms', String(TIMEOUT_MS)],
      {},
      { out: (line) => out.push(line), err: (line) => out.push(line) },
    );
    return { code, out };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-retention-orphan-'));
    writeFileSync(join(dir, 'seal.key'), keys.privatePem, { mode: 0o600 });
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 2);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), { integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem } });
    await insertRowsAgo(db, database, 2, 3);
    await app.get(AuditSealer).sealNow();
    proxy = await PartitionProxy.start(db.port);
  }, 120_000);

  afterAll(async () => {
    await blocker?.end().catch(() => undefined);
    await proxy?.stop();
    await app?.close();
    stderr?.restore();
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('once the network is back, the next run removes the month', async () => {
    // Hold the seal table so that the run waits inside its transaction, the sealer's lock taken.
    blocker = new Client({ connectionString: db.url(database) });
    await blocker.connect();
    await blocker.query('BEGIN; LOCK TABLE audit_seal IN ACCESS EXCLUSIVE MODE');
    const blockerPid = Number((await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    const first = retention(db.url(database).replace(`:${db.port}/`, `:${proxy.port}/`));
    await eventually(
      async () =>
        (
          await sql(
            `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> $1
               AND pid IN (SELECT pid FROM pg_locks WHERE NOT granted)`,
            [blockerPid],
          )
        ).length > 0,
      15_000,
      'a run holding the sealer lock, waiting for audit_seal',
    );
    // The network goes while the run waits; the statement then completes on the server, its answer dropped.
    proxy.partition();
    await blocker.query('COMMIT');
    await blocker.end();
    blocker = undefined;
    await sleep(1000);
    proxy.heal();
    expect((await first).code).not.toBe(0);
    expect(await sql(`SELECT to_regclass($1) IS NOT NULL AS kept`, [partitionAgo(2)])).toEqual([{ kept: true }]);

    const next = await eventually(
      async () => {
        const run = await retention(db.url(database));
        return run.code === 0 && run;
      },
      40_000,
      'a run after the partition',
    ).catch(async (error: Error) => {
      const orphans = await sql(
        `SELECT state, (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory')::int AS advisory
           FROM pg_stat_activity a WHERE datname = 'trail' AND state LIKE 'idle in transaction%'`,
      );
      return `${error.message}; sessions idle in transaction: ${JSON.stringify(orphans)}`;
    });
    expect(next).toEqual(expect.objectContaining({ code: 0, out: expect.arrayContaining([expect.stringMatching(/^RETIRED /)]) }));
    expect(await sql(`SELECT to_regclass($1) IS NOT NULL AS kept`, [partitionAgo(2)])).toEqual([{ kept: false }]);
  }, 120_000);
});
