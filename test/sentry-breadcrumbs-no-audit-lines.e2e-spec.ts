import { type INestApplication } from '@nestjs/common';
import * as Sentry from '@sentry/nestjs';
import { AUDIT_EVENTS, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { startSealingApp } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { SentryIngest } from './support/sentry-ingest';
import { StderrCapture } from './support/stderr';

// docs/FAILURES.md, "Safe output": "No `changes` payload is sent to Sentry." docs/PRIVACY.md,
// "What erasure keeps": Sentry is not among the copies an erasure does not reach. The Sentry SDK
// as apps initialize it (default integrations, as the example app's instrument.ts) records every
// console.error call as a breadcrumb of the events that follow: the module's lines (an
// `audit.buffered` line holds the whole entry) must not go through console, or the app's own next
// error report would carry them.
describe('the module’s stderr lines and the app’s own Sentry events', () => {
  let db: TestPostgres;
  let ingest: SentryIngest;
  let app: INestApplication;
  let stderr: StderrCapture;

  beforeAll(async () => {
    [db, ingest] = await Promise.all([TestPostgres.start(), SentryIngest.start()]);
    // The capture first: Sentry then wraps console.error over it, as in production.
    stderr = new StderrCapture();
    Sentry.init({ dsn: ingest.dsn, environment: 'test' });
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

  it('an app error reported after an outage carries no entry payload, and no erased value', async () => {
    await db.query(`CREATE FUNCTION unavailable() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'sorry, too many clients already' USING ERRCODE = '53300'; END $$`);
    await db.query(`CREATE TRIGGER unavailable BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION unavailable()`);
    await app.get(AuditService).log({
      action: 'profile_updated',
      entityType: 'Profile',
      entityId: 'p-1',
      userId: 'u-erased-42',
      changes: { body: { email: 'u-erased-42@example.com', plan: 'gold-plan-secret-terms' } },
    });
    await eventually(async () => stderr.of(AUDIT_EVENTS.buffered).length > 0, 20_000);
    await db.query(`DROP TRIGGER unavailable ON audit_log`);
    await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'p-1'`)).length === 1, 20_000);
    const erasure = await app.get(AuditService).erase({ userId: 'u-erased-42', requestedBy: 'dpo@example.com' });
    expect(erasure.erased).toBe(1);

    // The app's own error, as its exception filter (SentryGlobalFilter) reports it.
    Sentry.captureException(new Error('payment provider timed out'));
    await Sentry.flush(2000);
    const appEvent = await eventually(async () => ingest.events.find((e) => JSON.stringify(e).includes('payment provider timed out')));
    const crumbs = JSON.stringify((appEvent as { breadcrumbs?: unknown }).breadcrumbs ?? []);
    expect({
      email: crumbs.includes('u-erased-42@example.com'),
      changes: crumbs.includes('gold-plan-secret-terms'),
    }).toEqual({ email: false, changes: false });
    // The lines themselves are on stderr, and none went through console.error.
    expect(stderr.of(AUDIT_EVENTS.buffered)[0]).toMatchObject({ entry: { userId: 'u-erased-42' } });
    expect(stderr.other).toEqual([]);
  }, 90_000);
});
