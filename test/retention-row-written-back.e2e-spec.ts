import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUDIT_EVENTS, AuditSealer } from '../src/audit';
import { AuditEntryNormalizer, type AuditRecord } from '../src/audit/audit-entry';
import { buildAuditInsert } from '../src/audit/audit-insert-sql';
import { entrySigner, resolveEntryKeys } from '../src/audit/integrity/entry-auth';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { sealingKeys, startSealingApp, verify, witnessText } from './support/integrity';
import { monthsAgo, partitionAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/INTEGRITY.md threat model: "the app's own role ... inserts a row, copying a real row's
// fields and even its code: entry key, the sealer never seals it". While the real row is in the
// table its key (id, occurred_at) refuses the copy. Once retention has removed its month under a
// signed checkpoint, the copy (genuine code and all, from a CloudWatch line, a backup, an archive)
// lands in the default partition as a late row would: the sealer must refuse it, and the partition
// upkeep must not make the retired month again.
describe('a row retention removed, written back with its code', () => {
  const database = 'resurrect';
  const keys = sealingKeys();
  const secret = randomBytes(32).toString('base64');
  const entryKey = `k1:${secret}`;
  const normalizer = new AuditEntryNormalizer([], 64 * 1024, entrySigner(resolveEntryKeys([{ id: 'k1', secret }])));
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  const retained: string[] = [];
  const insert = (records: AuditRecord[]) => {
    const { sql, parameters } = buildAuditInsert('audit_log', records);
    return db.query(sql, parameters, database);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-resurrect-'));
    writeFileSync(join(dir, 'seal.key'), keys.privatePem, { mode: 0o600 });
    writeFileSync(join(dir, 'seal.pub'), keys.publicPem);
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 4);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), {
      integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem, entryKeys: [{ id: 'k1', secret }] },
    });
    await app.get(AuditSealer).sealNow();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('names the copy of a retired row (the sealer refuses it, audit-verify exits 1)', async () => {
    const start = new Date(monthsAgo(3).start).getTime();
    // Genuine entries of three months ago (a replay after a long outage), sealed, then retired.
    const records = [1, 2, 3].map(
      (h) =>
        normalizer.normalize({
          action: 'nda_created',
          entityType: 'NDA',
          entityId: `old-${h}`,
          occurredAt: new Date(start + h * 3_600_000),
        }).record,
    );
    await insert(records);
    await app.get(AuditSealer).sealNow();
    const out: string[] = [];
    const code = await runRetention(
      ['--url', db.url(database), '--signing-key', join(dir, 'seal.key'), '--months', '2'],
      { AUDIT_INTEGRITY_ENTRY_KEY: entryKey },
      {
        out: (line) => out.push(line),
        err: (line) => (line.includes(`"event":"${AUDIT_EVENTS.retained}"`) ? retained.push(line) : out.push(line)),
      },
    );
    expect({ code, gone: (await db.query(`SELECT to_regclass($1) IS NULL AS gone`, [partitionAgo(3)], database))[0] }).toEqual({
      code: 0,
      gone: { gone: true },
    });

    // The app's role (INSERT, triggers on: tx set by the database) puts one of them back.
    await insert([records[0]]);
    await app.get(AuditSealer).sealNow();
    const forged = stderr.of(AUDIT_EVENTS.forged).map((line) => String(line.auditId));
    const witness = join(dir, 'witness.log');
    writeFileSync(witness, witnessText(stderr) + retained.map((line) => `${line}\n`).join(''));
    const report = await verify(db.url(database), '--witness', witness, '--public-key', join(dir, 'seal.pub'), '--entry-key', entryKey);
    expect({
      back: (await db.query(`SELECT count(*)::int AS n FROM audit_log WHERE id = $1`, [records[0].id], database))[0],
      sealerRefused: forged.includes(records[0].id),
      named: report.out.some((line) => line.startsWith('ANOMALY') && line.includes(records[0].id)),
      code: report.code,
      summary: report.out.filter((line) => /^(audit-verify|entry authentication|result):/.test(line)),
    }).toEqual({ back: { n: 1 }, sealerRefused: true, named: true, code: 1, summary: expect.anything() });
    const [upkeep] = await db.query(`SELECT created, default_rows::int AS default_rows FROM audit_log_create_partitions(3)`, [], database);
    expect(upkeep).toEqual({ created: 0, default_rows: 1 });
    expect((await db.query(`SELECT to_regclass($1) IS NULL AS gone`, [partitionAgo(3)], database))[0]).toEqual({ gone: true });
  }, 120_000);
});
