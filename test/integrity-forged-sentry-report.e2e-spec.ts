import { type INestApplication } from '@nestjs/common';
import * as Sentry from '@sentry/nestjs';
import { randomBytes } from 'node:crypto';
import { AUDIT_EVENTS, AuditSealer } from '../src/audit';
import { eventually } from './support/app';
import { startSealingApp } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { SentryIngest } from './support/sentry-ingest';
import { StderrCapture } from './support/stderr';

// docs/INTEGRITY.md, "The sealer seals only authentic rows": a forged row is reported by "a
// Sentry warning (fingerprint `audit-forged-rows`, the first 20 rows)". With the Sentry SDK as
// the app initializes it (normalizeDepth 3, the default), the warning must still name them: one
// string a row in contexts.audit.rows, never "[Object]".
describe('the audit-forged-rows Sentry warning', () => {
  let db: TestPostgres;
  let ingest: SentryIngest;
  let app: INestApplication;
  let stderr: StderrCapture;
  const FORGED = '01900000-0000-7000-8000-00000000f0a1';

  beforeAll(async () => {
    [db, ingest] = await Promise.all([TestPostgres.start(), SentryIngest.start()]);
    Sentry.init({ dsn: ingest.dsn, environment: 'test' });
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(), {
      integrity: { intervalMs: 3_600_000, entryKeys: [{ id: 'k1', secret: randomBytes(32).toString('base64') }] },
    });
    await app.get(AuditSealer).sealNow();
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await Sentry.close(2000);
    await Promise.all([db?.stop(), ingest?.stop()]);
  }, 30_000);

  it('names the forged rows it reports (ids and reasons), not "[Object]"', async () => {
    // A leaked DATABASE_URL: a row inserted without the module.
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, outcome) VALUES ($1, now(), 'nda_deleted', 'NDA', '7', 'success')`,
      [FORGED],
    );
    await app.get(AuditSealer).sealNow();
    expect(stderr.of(AUDIT_EVENTS.forged).map((line) => line.auditId)).toEqual([FORGED]);
    await Sentry.flush(2000);
    const event = await eventually(async () => ingest.events.find((e) => e.fingerprint?.includes('audit-forged-rows')), 10_000);
    const audit = event.contexts?.audit as { trail?: string; seal?: number; count?: number; rows?: unknown[] };
    expect(audit).toMatchObject({ seal: expect.any(Number), count: 1 });
    expect(audit.rows).toEqual([
      expect.stringMatching(new RegExp(`^${FORGED} \\(tx \\d+\\): .*no entry code.*; claims nda_deleted on NDA 7$`)),
    ]);
  }, 60_000);
});
