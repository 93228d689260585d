import { type INestApplication } from '@nestjs/common';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUDIT_EVENTS, AuditRetention, AuditSealer } from '../src/audit';
import { sealingKeys, startSealingApp, verify } from './support/integrity';
import { insertRowsAgo, monthsAgo, partitionAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// The module's `retention` option: the app itself removes the old, wholly sealed months (empty
// ones too), signs each checkpoint with integrity.signingKey and writes its audit.retained line to
// its own stderr, so that the witness (the app's log group) holds every link of the chain.
describe('retention applied by the module', () => {
  const database = 'retention_module';
  const keys = sealingKeys();
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-retention-module-'));
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 4);
    for (const k of [4, 3, 0]) await insertRowsAgo(db, database, k);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), {
      integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem },
      retention: { months: 1, legalHold: [monthsAgo(3).month] },
    });
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('removes the sealed months past the window, not the held one, and the trail verifies against its own stderr', async () => {
    // The run at start may have come before the first seal or after it: the outcome is the same.
    await app.get(AuditRetention).retainNow();
    await app.get(AuditSealer).sealNow();
    const decisions = await app.get(AuditRetention).retainNow();
    expect(decisions.filter((d) => d.action === 'failed')).toEqual([]);
    expect(decisions.find((d) => d.month === monthsAgo(3).month)?.reason).toBe('legal hold');
    const partitions = (
      await db.query(
        `SELECT c.relname AS name FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = 'audit_log'::regclass`,
        [],
        database,
      )
    ).map((row) => row.name as string);
    expect(partitions).not.toContain(partitionAgo(4));
    expect(partitions).not.toContain(partitionAgo(2));
    expect(partitions).toEqual(expect.arrayContaining([partitionAgo(3), partitionAgo(1)]));
    // In either order: the run at start may have removed the empty month before the other was sealed.
    const retainedLines = stderr.of(AUDIT_EVENTS.retained).map((line) => [line.month, line.retainedRows, line.coveredHash === null]);
    expect(retainedLines.sort((a, b) => String(a[0]).localeCompare(String(b[0])))).toEqual([
      [monthsAgo(4).month, 3, false],
      [monthsAgo(2).month, 0, true],
    ]);
    const witness = join(dir, 'witness.log');
    writeFileSync(
      witness,
      stderr.lines
        .filter((line) => line.event === AUDIT_EVENTS.sealed || line.event === AUDIT_EVENTS.retained)
        .map((line) => `${JSON.stringify(line)}\n`)
        .join(''),
    );
    const publicKey = join(dir, 'seal.pub');
    writeFileSync(publicKey, keys.publicPem);
    const report = await verify(db.url(database), '--witness', witness, '--public-key', publicKey);
    expect(report.anomalies).toEqual([]);
    expect(report.code).toBe(0);
    const again = await app.get(AuditRetention).retainNow();
    expect(again.filter((d) => d.action !== 'kept')).toEqual([]);
  });
});
