import { type INestApplication } from '@nestjs/common';
import * as Sentry from '@sentry/nestjs';
import { randomBytes } from 'node:crypto';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { startSealingApp } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { SentryIngest } from './support/sentry-ingest';
import { StderrCapture } from './support/stderr';

// docs/PRIVACY.md, "What erasure keeps": Sentry is not among the copies an erasure does not
// reach, and with `privacy` on no stderr line outside those it lists holds an actor id. A row the
// sealer calls forged is reported by an `audit.forged` line and the audit-forged-rows warning; here
// the row is a genuine entry of a person, written by an instance still rolling out without entry
// keys (docs/INTEGRITY.md, "Roll-out": reported as forged), and that person is then erased.
describe('the forged-rows report with privacy on', () => {
  let db: TestPostgres;
  let ingest: SentryIngest;
  let keyed: INestApplication;
  let stderr: StderrCapture;
  const privacy = { personalData: ['changes.body.email'], pseudonymKey: 'a-pseudonym-key-of-at-least-32-characters' };
  const entryKeys = [{ id: 'k1', secret: randomBytes(32).toString('base64') }];

  beforeAll(async () => {
    [db, ingest] = await Promise.all([TestPostgres.start(), SentryIngest.start()]);
    // An app that raises normalizeDepth (Sentry's default 3 cuts contexts.audit.rows to "[Object]").
    Sentry.init({ dsn: ingest.dsn, environment: 'test', normalizeDepth: 10 });
    stderr = new StderrCapture();
    keyed = await startSealingApp(db.url(), { privacy, integrity: { intervalMs: 3_600_000, entryKeys } });
    // The boundary of entry authentication is recorded.
    await keyed.get(AuditSealer).sealNow();
  }, 90_000);

  afterAll(async () => {
    await keyed?.close();
    stderr?.restore();
    await Sentry.close(2000);
    await Promise.all([db?.stop(), ingest?.stop()]);
  }, 30_000);

  it('sends no actor id of an erased person to Sentry or to an unlisted stderr line', async () => {
    // An instance not yet given the entry key (a roll-out in progress) writes a person's entry.
    const unkeyed = await startSealingApp(db.url(), { privacy, integrity: { enabled: false } });
    try {
      await unkeyed.get(AuditService).log({
        action: 'profile_updated',
        entityType: 'Profile',
        entityId: 'p-1',
        userId: 'u-erased-42',
        ip: '198.51.100.42',
        changes: { body: { email: 'u-erased-42@example.com' } },
      });
    } finally {
      await unkeyed.close();
    }
    await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'p-1'`)).length === 1, 20_000);
    await keyed.get(AuditSealer).sealNow();
    expect(stderr.of(AUDIT_EVENTS.forged).length).toBe(1);

    const erasure = await keyed.get(AuditService).erase({ userId: 'u-erased-42', requestedBy: 'dpo@example.com' });
    expect(erasure.erased).toBe(1);
    expect(JSON.stringify(await db.query(`SELECT user_id, ip, personal FROM audit_log`))).not.toContain('u-erased-42');

    await Sentry.flush(2000);
    await eventually(async () => ingest.events.some((e) => e.fingerprint?.includes('audit-forged-rows')), 10_000);
    const inSentry = ingest.events
      .filter((e) => e.fingerprint?.includes('audit-forged-rows'))
      .flatMap((e) => (e.contexts?.audit as { rows?: unknown[] })?.rows ?? []);
    const [line] = stderr.of(AUDIT_EVENTS.forged);
    // The row's id finds it; the actor it claims is in neither.
    expect(inSentry).toEqual([expect.stringMatching(/^\S+ \(tx \d+\): .*; claims profile_updated on Profile p-1$/)]);
    expect(line).toMatchObject({ auditId: expect.any(String), userId: null, action: 'profile_updated', entityId: 'p-1' });
    expect(inSentry[0]).toContain(line.auditId as string);
    expect(ingest.rawBodies.filter((body) => body.includes('u-erased-42')).length).toBe(0);
  }, 90_000);
});
