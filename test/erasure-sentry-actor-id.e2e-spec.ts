import { type INestApplication } from '@nestjs/common';
import * as Sentry from '@sentry/nestjs';
import { AuditService } from '../src/audit';
import { eventually } from './support/app';
import { startSealingApp } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { SentryIngest } from './support/sentry-ingest';
import { StderrCapture } from './support/stderr';

// docs/PRIVACY.md, "What erasure keeps": with the `privacy` option on, a failed write's Sentry
// warning carries no actor id (neither `user.id` nor `contexts.audit.userId`): Sentry is outside
// the trail, and an erasure could not reach a copy there.
describe('a Sentry warning of a failed write, with privacy on', () => {
  let db: TestPostgres;
  let ingest: SentryIngest;
  let app: INestApplication;
  let stderr: StderrCapture;

  beforeAll(async () => {
    [db, ingest] = await Promise.all([TestPostgres.start(), SentryIngest.start()]);
    Sentry.init({ dsn: ingest.dsn, environment: 'test' });
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(), {
      retryBackoffMs: 200,
      retryBackoffMaxMs: 200,
      privacy: { personalData: ['changes.body.email'], pseudonymKey: 'a-pseudonym-key-of-at-least-32-characters' },
      integrity: { intervalMs: 3_600_000 },
    });
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await Sentry.close(2000);
    await Promise.all([db?.stop(), ingest?.stop()]);
  }, 30_000);

  it('sends no erasable actor id to Sentry, so that none outlives its erasure there', async () => {
    // The database is briefly unavailable for inserts (SQLSTATE 53300: too many connections, transient).
    await db.query(`CREATE FUNCTION unavailable() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'sorry, too many clients already' USING ERRCODE = '53300'; END $$`);
    await db.query(`CREATE TRIGGER unavailable BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION unavailable()`);
    await app.get(AuditService).log({
      action: 'profile_updated',
      entityType: 'Profile',
      entityId: 'p-1',
      userId: 'u-erased-42',
      ip: '198.51.100.42',
      changes: { body: { email: 'u-erased-42@example.com' } },
    });
    await eventually(async () => ingest.events.some((e) => e.fingerprint?.includes('audit-db-write-failed')), 20_000);
    await db.query(`DROP TRIGGER unavailable ON audit_log`);
    await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'p-1'`)).length === 1, 20_000);

    const erasure = await app.get(AuditService).erase({ userId: 'u-erased-42', requestedBy: 'dpo@example.com' });
    expect(erasure.erased).toBe(1);
    expect(JSON.stringify(await db.query(`SELECT user_id, ip, personal FROM audit_log`))).not.toContain('u-erased-42');
    await Sentry.flush(2000);
    const named = ingest.events.flatMap((e) => [e.user?.id, e.contexts?.audit?.userId]).filter((id) => id === 'u-erased-42');
    expect(named).toEqual([]);
    expect(ingest.rawBodies.some((body) => body.includes('u-erased-42'))).toBe(false);
  }, 60_000);
});
