import { type INestApplication } from '@nestjs/common';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Readable } from 'node:stream';
import { DataSource } from 'typeorm';
import { AuditQueryService, AuditSealer } from '../src/audit';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { sealingKeys, startSealingApp } from './support/integrity';
import { insertRowsAgo, monthsAgo, partitionAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/GUIDE.md: "Reads never disturb writes: readers that are slow, or that stop reading, cannot
// make an audit write wait". A client opens an export and never reads: its read-only transaction
// keeps ACCESS SHARE on audit_log. Retention's DETACH PARTITION needs ACCESS EXCLUSIVE on it, and
// PostgreSQL queues every later lock request behind a waiting one: had retention waited for its
// lock, every audit insert would have waited with it. It waits for none: the month fails this run.
describe('an unread export while retention removes a month', () => {
  const database = 'export_lock';
  const keys = sealingKeys();
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  const retention = async () => {
    const out: string[] = [];
    const code = await runRetention(
      ['--url', db.url(database), '--signing-key', join(dir, 'seal.key'), '--months', '2'],
      {},
      { out: (line) => out.push(line), err: (line) => out.push(line) },
    );
    return { code, out };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-export-lock-'));
    writeFileSync(join(dir, 'seal.key'), keys.privatePem, { mode: 0o600 });
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 4);
    await insertRowsAgo(db, database, 3, 3);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), { integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem } });
    await app.get(AuditSealer).sealNow();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('never makes an audit insert wait on a lock: the month fails this run, and goes once the reader is gone', async () => {
    const exported: Readable = await app.get(AuditQueryService).export({ format: 'ndjson' });
    // An insert may queue behind a DETACH for its 1 ms lock_timeout (LIFECYCLE.md): seen waiting longer, it waited on retention.
    const insertWaits = `SELECT count(*)::int AS n FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
      WHERE NOT l.granted AND l.mode = 'RowExclusiveLock' AND l.relation = 'audit_log'::regclass
        AND pg_catalog.clock_timestamp() - a.query_start > interval '200 milliseconds'`;
    let waited = 0;
    let slowest = 0;
    let first: Awaited<ReturnType<typeof retention>>;
    try {
      const running = retention();
      let done = false;
      void running.finally(() => (done = true));
      // Audit writes, as the writer makes them, on the app's own pool, all the while retention tries.
      while (!done) {
        const started = performance.now();
        const insert = app
          .get(DataSource)
          .query(`INSERT INTO audit_log (id, occurred_at, action, outcome) VALUES (gen_random_uuid(), now(), 'nda_created', 'success')`);
        waited += (await db.query<{ n: number }>(insertWaits, [], database))[0].n;
        await insert;
        slowest = Math.max(slowest, performance.now() - started);
      }
      first = await running;
    } finally {
      exported.destroy();
    }
    expect({ waited, slowestUnder1s: slowest < 1000 }).toEqual({ waited: 0, slowestUnder1s: true });
    expect(first.out).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^FAILED ${monthsAgo(3).month} .*55P03`))]));

    const second = await retention();
    expect(second.out).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^RETIRED ${monthsAgo(3).month} `))]));
    expect((await db.query(`SELECT to_regclass($1) IS NULL AS gone`, [partitionAgo(3)], database))[0]).toEqual({ gone: true });
  }, 90_000);
});
