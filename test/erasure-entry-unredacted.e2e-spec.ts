import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { AuditSealer, AuditService, DEFAULT_REDACT_KEYS } from '../src/audit';
import { type AuditEntryNormalizer, type AuditRecord } from '../src/audit/audit-entry';
import { buildAuditInsert } from '../src/audit/audit-insert-sql';
import { parseEntryKeys, resolveEntryKeys } from '../src/audit/integrity/entry-auth';
import { heldBackByErasure } from '../src/audit/privacy/replay-guard';
import { eventually } from './support/app';
import { startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/PRIVACY.md, "Replay after an erasure" and "Rows an erasure should have taken": both checks
// find an erasure by the subject pseudonym in its `audit_erasure` entry (`changes.erasure`). The
// app's `redactKeys` name the app's fields: an app that redacts `subject` (an e-mail's subject
// line) must still get erasure entries whose subject the checks can read.
describe('an erasure entry, when the app redacts a key it uses', () => {
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  const keys = resolveEntryKeys(parseEntryKeys(entryKey)).map((k) => k.key);
  let lost: AuditRecord;

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    app = await startSealingApp(db.url(), {
      redactKeys: [...DEFAULT_REDACT_KEYS, 'subject', 'keyFingerprint', 'erasure'],
      privacy: { personalData: ['changes.body.email'] },
      integrity: { intervalMs: 3_600_000, entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }] },
    });
    const service = app.get(AuditService);
    // An entry of u-9 made now, whose row never reached the table (lost in an outage, kept in a spool or an export).
    lost = (service as unknown as { normalizer: AuditEntryNormalizer }).normalizer.normalize({
      action: 'profile_updated',
      entityType: 'Profile',
      entityId: 'p-lost',
      userId: 'u-9',
      ip: '198.51.100.9',
      changes: { body: { email: 'u-9@example.com' } },
    }).record;
    await service.log({ action: 'profile_updated', entityType: 'Profile', entityId: 'p-kept', userId: 'u-9' });
    await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'p-kept'`)).length === 1);
    const erasure = await service.erase({ userId: 'u-9', requestedBy: 'dpo@example.com' });
    expect(erasure.erased).toBe(1);
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  }, 30_000);

  it('is stored unredacted', async () => {
    const [entry] = await db.query<{ erasure: Record<string, unknown> }>(
      `SELECT changes -> 'erasure' AS erasure FROM audit_log WHERE action = 'audit_erasure'`,
    );
    expect(entry.erasure.subject).toMatch(/^p1:/);
  }, 60_000);

  it('holds back, on replay and recovery, an entry of the erased user made before the erasure', async () => {
    const query = async (sql: string, parameters: unknown[]) => await db.query<Record<string, unknown>>(sql, parameters);
    const held = await heldBackByErasure(query, '"public"."audit_log"', [lost], keys);
    expect(held.map((h) => h.id)).toEqual([lost.id]);
  }, 60_000);

  it('names row_not_erased once such an entry is inserted after the erasure anyway', async () => {
    const { sql, parameters } = buildAuditInsert('audit_log', [lost]);
    await db.query(sql, parameters);
    await app.get(AuditSealer).sealNow();
    const { anomalies } = await verify(db.url(), '--entry-key', entryKey);
    expect(anomalies).toContain(`ANOMALY row_not_erased row ${lost.id}`);
  }, 60_000);
});
