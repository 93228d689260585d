import { type INestApplication } from '@nestjs/common';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { DbHealthIndicator } from '../src/audit/audit-db.health';
import { eventually } from './support/app';
import { startSealingApp } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// The sealer's own credentials failing: first a role without its grants (granted later, no
// restart), then the role refused at login with its connections ended (credentials rotated away).
// Each is a sealing failure as any other: an audit.seal_failed line, health's failures, retried;
// the app's writes go on meanwhile, and once the role works again everything is sealed.
describe('the sealer on credentials of its own, while they fail', () => {
  const database = 'sealer_outage';
  const PASSWORD = 'sealer-outage-pw';
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;

  const sql = (text: string) => db.query(text, [], database);
  const count = async (text: string) => (await sql(text))[0].n as number;
  const rows = () => count('SELECT count(*)::int AS n FROM audit_log');
  const sealedRows = () => count('SELECT coalesce(sum(row_count), 0)::int AS n FROM audit_seal');
  const failuresInHealth = () =>
    (app.get(DbHealthIndicator).isHealthy().audit_db as unknown as { integrity: { failures: number } }).integrity.failures;
  const log = (entityId: string) => app.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId });

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await db.query(`CREATE ROLE sealer_role LOGIN PASSWORD '${PASSWORD}'`);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), {
      integrity: { intervalMs: 600_000, sealerDatabaseUrl: db.url(database, 'sealer_role', PASSWORD) },
    });
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('fails naming the missing grants, then seals once they are given', async () => {
    await log('before-grant');
    await app.get(AuditSealer).sealNow();
    const failed = stderr.of(AUDIT_EVENTS.sealFailed).at(-1) as unknown as { error: { code: string; message: string } };
    expect(failed.error.code).toBe('AUDIT_SEALER_PRIVILEGE');
    expect(failed.error.message).toMatch(
      /lacks SELECT on "public"."audit_log", INSERT on "public"."audit_seal", SELECT on "public"."audit_seal"/,
    );
    expect(await sealedRows()).toBe(0);
    await sql(`GRANT SELECT ON audit_log TO sealer_role`);
    await sql(`GRANT INSERT, SELECT ON audit_seal TO sealer_role`);
    await eventually(async () => {
      await app.get(AuditSealer).sealNow();
      return (await sealedRows()) === (await rows()) && (await rows()) === 1;
    });
    expect(app.get(AuditSealer).status()?.failures).toBe(0);
  }, 60_000);

  it('while its role cannot log in, sealing fails and is reported, the app writes on, and all is sealed after', async () => {
    stderr.clear();
    await sql(`ALTER ROLE sealer_role NOLOGIN`);
    await sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'sealer_role'`);
    for (let i = 1; i <= 3; i++) await log(`during-${i}`);
    await eventually(async () => (await rows()) === 4);
    await app.get(AuditSealer).sealNow();
    await app.get(AuditSealer).sealNow();
    const failures = stderr.of(AUDIT_EVENTS.sealFailed) as unknown as { error: { message: string }; consecutiveFailures: number }[];
    expect(failures.map((line) => line.consecutiveFailures)).toEqual([1, 2]);
    expect(failures[0].error.message).toContain('not permitted to log in');
    expect(JSON.stringify(failures)).not.toContain(PASSWORD);
    expect(failuresInHealth()).toBe(2);
    expect(await sealedRows()).toBe(1);
    await sql(`ALTER ROLE sealer_role LOGIN`);
    await eventually(async () => {
      await app.get(AuditSealer).sealNow();
      return (await sealedRows()) === 4;
    });
    expect(app.get(AuditSealer).status()?.failures).toBe(0);
  }, 60_000);
});
