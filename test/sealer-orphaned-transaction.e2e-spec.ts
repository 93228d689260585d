import { type INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { AuditService } from '../src/audit';
import { eventually } from './support/app';
import { startSealingApp } from './support/integrity';
import { PartitionProxy } from './support/partition-proxy';
import { sleep, TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/INTEGRITY.md, "Never in the way": a sealer cut off by a silent partition inside its
// transaction (the server never hears of it, and its session would hold the sealer's advisory lock
// until TCP keepalive gives up, hours later) seals again soon after the network is back, on this
// instance or any other: each transaction of the sealer sets idle_in_transaction_session_timeout
// (its round trip's deadline plus a second), so the server ends the orphaned one and its lock.
describe('a sealer partitioned inside its transaction', () => {
  let db: TestPostgres;
  let proxy: PartitionProxy;
  let app: INestApplication | undefined;
  let blocker: Client | undefined;
  let stderr: StderrCapture | undefined;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('trail');
    proxy = await PartitionProxy.start(db.port);
  }, 60_000);

  afterAll(async () => {
    await blocker?.end().catch(() => undefined);
    await app?.close();
    stderr?.restore();
    await proxy?.stop();
    await db?.stop();
  });

  it('once the network is back, a row written after the partition is sealed', async () => {
    stderr = new StderrCapture();
    const url = db.url('trail').replace(`:${db.port}/`, `:${proxy.port}/`);
    app = await startSealingApp(url, { writeTimeoutMs: 200, integrity: { intervalMs: 200 } });
    const audit = app.get(AuditService);
    const sealedRows = async () =>
      Number((await db.query(`SELECT coalesce(sum(row_count), 0)::int AS n FROM audit_seal`, [], 'trail'))[0].n);
    await audit.log({ action: 'nda_created', entityType: 'NDA', entityId: 'before' });
    await eventually(async () => (await sealedRows()) >= 1, 15_000, 'the first row sealed');

    // Hold the seal table so that the next attempt waits inside its transaction, its lock taken.
    blocker = new Client({ connectionString: db.url('trail') });
    await blocker.connect();
    await blocker.query('BEGIN; LOCK TABLE audit_seal IN ACCESS EXCLUSIVE MODE');
    await audit.log({ action: 'nda_created', entityType: 'NDA', entityId: 'during' });
    const blockerPid = Number((await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    await eventually(
      async () =>
        (
          await db.query(
            `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> $1
               AND pid IN (SELECT pid FROM pg_locks WHERE NOT granted)`,
            [blockerPid],
            'trail',
          )
        ).length > 0,
      15_000,
      'an attempt holding the sealer lock, waiting for audit_seal',
    );
    // The network goes while the attempt waits; the statement then completes on the server, its answer dropped.
    proxy.partition();
    await blocker.query('COMMIT');
    await blocker.end();
    blocker = undefined;
    await sleep(1000);
    proxy.heal();

    await audit.log({ action: 'nda_created', entityType: 'NDA', entityId: 'after' });
    await eventually(
      async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'after'`, [], 'trail')).length === 1,
      20_000,
      'the row written after the partition',
    );
    // The attempt's round-trip deadline is 5.2 s here (statement 5 s + writeTimeoutMs); then it retries on a fresh connection.
    const sealed = await eventually(
      async () => (await sealedRows()) >= 3,
      30_000,
      'the rows written during and after the partition sealed',
    ).catch(async () => {
      const orphans = await db.query(
        `SELECT state, (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory')::int AS advisory
             FROM pg_stat_activity a WHERE datname = 'trail' AND state LIKE 'idle in transaction%'`,
        [],
        'trail',
      );
      return `not sealed: ${await sealedRows()} rows sealed; sessions idle in transaction: ${JSON.stringify(orphans)}`;
    });
    expect(sealed).toBe(true);
  }, 120_000);
});
