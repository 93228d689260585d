import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { AuditSealer, AuditService } from '../src/audit';
import { type AuditEntryNormalizer, type AuditRecord } from '../src/audit/audit-entry';
import { resolvePrivacyOptions } from '../src/audit/privacy/privacy-options';
import { heldBackByErasure } from '../src/audit/privacy/replay-guard';
import { eventually } from './support/app';
import { runVerify } from '../src/audit/integrity/verify-command';
import { startSealingApp } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/PRIVACY.md, "Pseudonymous actor ids": a trail that ran with `privacy` before
// `pseudonymizeUserId` was turned on holds the user's earlier rows under the raw id. erase()
// looks for both forms, audit-verify's check and the replay guard match both.
describe('erase({ userId }) after pseudonymizeUserId was turned on', () => {
  let db: TestPostgres;
  let app: INestApplication | undefined;
  let stderr: StderrCapture;
  let lost: AuditRecord;
  const secret = randomBytes(32).toString('base64');
  const entryKey = `k1:${secret}`;
  const pseudonymKey = 'a-pseudonym-key-of-at-least-32-characters';
  const start = (pseudonymizeUserId: boolean) =>
    startSealingApp(db.url(), {
      privacy: { personalData: ['changes.body.email'], pseudonymKey, pseudonymizeUserId },
      integrity: { intervalMs: 3_600_000, entryKeys: [{ id: 'k1', secret }] },
    });
  const logFor = async (entityId: string) => {
    await (app as INestApplication).get(AuditService).log({
      action: 'profile_updated',
      entityType: 'Profile',
      entityId,
      userId: 'u-9',
      ip: '198.51.100.9',
      changes: { body: { email: 'u-9@example.com' } },
    });
    await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = $1`, [entityId])).length === 1);
  };

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    app = await start(false);
    await logFor('p-before');
    // An entry of u-9 made before the option, that never reached the table (kept in a spool or an export).
    lost = (app.get(AuditService) as unknown as { normalizer: AuditEntryNormalizer }).normalizer.normalize({
      action: 'profile_updated',
      entityType: 'Profile',
      entityId: 'p-lost',
      userId: 'u-9',
      changes: { body: { email: 'u-9@example.com' } },
    }).record;
    await app.close();
    app = await start(true);
    await logFor('p-after');
    const erasure = await app.get(AuditService).erase({ userId: 'u-9', requestedBy: 'dpo@example.com' });
    // The row under the pseudonym, and the one from before the option under the raw id.
    expect(erasure.erased).toBe(2);
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  }, 30_000);

  it('takes every row of the user, or names those it could not', async () => {
    await (app as INestApplication).get(AuditSealer).sealNow();
    const out: string[] = [];
    const io = { out: (line: string) => out.push(line), err: (line: string) => out.push(line) };
    await runVerify(['--url', db.url(), '--entry-key', entryKey], { AUDIT_PRIVACY_PSEUDONYM_KEY: pseudonymKey }, io);
    const anomalies = out.filter((line) => line.startsWith('ANOMALY')).map((line) => line.split(':')[0]);
    const left = await db.query<{ id: string }>(
      `SELECT id::text AS id FROM audit_log WHERE user_id = 'u-9' OR personal LIKE '%u-9@example.com%'`,
    );
    const unnamed = left.map((r) => r.id).filter((id) => !anomalies.some((a) => a.endsWith(`row ${id}`)));
    expect(unnamed).toEqual([]);
    // Each erasure id's rows match its entry: the accounting is clean.
    expect(anomalies).toEqual([]);
    expect(await db.query(`SELECT 1 FROM audit_log WHERE action = 'audit_erasure'`)).toHaveLength(2);
  }, 60_000);

  it('holds back, on replay and recovery, an entry of the user made before the erasure and the option', async () => {
    const key = resolvePrivacyOptions({ pseudonymKey }).pseudonymKey;
    const query = async (sql: string, parameters: unknown[]) => await db.query<Record<string, unknown>>(sql, parameters);
    const held = await heldBackByErasure(query, '"public"."audit_log"', [lost], key ? [key] : []);
    expect(held.map((h) => h.id)).toEqual([lost.id]);
  }, 60_000);
});
