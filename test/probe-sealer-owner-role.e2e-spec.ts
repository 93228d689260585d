// Promise (docs/INTEGRITY.md, "Roles"): "Checked at start: with `sealerDatabaseUrl` set but the
// app's role still able to insert into `audit_seal` (`has_table_privilege`), the module logs the
// warning `AUDIT_SEALER_ROLE_SHARED: … the separation is not in force`", and with the grants of
// that section "the attack of a made-up link naming a forged row … stops at the link
// (`permission denied`)".
//
// Break: when the app's role owns `audit_log` and `audit_seal` (README step 1 runs the migrations
// from the app's DataSource, `migrationsRun: true` on DATABASE_URL, so the tables are its own). The section's
// `REVOKE INSERT ON audit_seal FROM app_role` then makes `has_table_privilege` answer false, and
// the start-up check is satisfied; but an owner may grant itself any privilege on its table again,
// and turn its table's triggers off. Whoever holds the app's credentials runs
// `GRANT INSERT ON audit_seal TO app_role` and `ALTER TABLE audit_seal DISABLE TRIGGER USER`, and
// appends the made-up link the section says stops at `permission denied`.
//
// Observed: no AUDIT_SEALER_ROLE_SHARED warning; the link is inserted (not refused with 42501;
// with the triggers on, the database refuses this link with 23000, but the owner turns them off).
// Severity: medium (needs the app's role to own the tables, which the README's own set-up does).
// Fix guess: the separation check also asks whether the app's role owns (or is a member of the
// owner of) the seal table, the audit table or its partitions (`pg_has_role(current_user,
// relowner, 'MEMBER')`), and warns; the docs say the owner must be a third role.
import { type INestApplication, Logger, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditSealer, AuditService } from '../src/audit';
import { eventually, partitionsChecked } from './support/app';
import { sealingKeys } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

describe('probe: the app role owns the audit tables (README set-up), sealer on its own role', () => {
  const database = 'probe_owner_roles';
  const keys = sealingKeys();
  const entryKey = randomBytes(32).toString('base64');
  const APP = { user: 'app_owner', password: 'app-owner-pw' };
  const SEALER = { user: 'sealer_role', password: 'sealer-role-pw' };
  let db: TestPostgres;
  let app: INestApplication | undefined;
  let stderr: StderrCapture;
  let warn: jest.SpyInstance;

  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  const url = (role: { user: string; password: string }) => db.url(database, role.user, role.password);
  const asRole = async <T>(role: { user: string; password: string }, work: (client: Client) => Promise<T>): Promise<T> => {
    const client = new Client({ connectionString: url(role) });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    for (const role of [APP, SEALER]) await db.query(`CREATE ROLE ${role.user} LOGIN PASSWORD '${role.password}'`);
    await db.createDatabase(database);
    // The migrations need a superuser (pg_statistic, probe-migrations-non-superuser); the tables
    // then belong to the app's role, as when the app's DataSource created them (README step 1,
    // `migrationsRun: true` on DATABASE_URL) or an operator handed them to it.
    const source = new DataSource({ type: 'postgres', url: db.url(database), migrations: [...AUDIT_MIGRATIONS] });
    await source.initialize();
    try {
      await source.runMigrations();
    } finally {
      await source.destroy();
    }
    await sql(`ALTER TABLE audit_log OWNER TO ${APP.user}`);
    await sql(`ALTER TABLE audit_seal OWNER TO ${APP.user}`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_create_partitions(integer) TO ${APP.user}`);
    // docs/INTEGRITY.md, "Roles": the sealer's grants, and the REVOKE for an install that granted the app's role more.
    await sql(`GRANT SELECT ON audit_log TO sealer_role`);
    await sql(`GRANT INSERT, SELECT ON audit_seal TO sealer_role`);
    await sql(`REVOKE INSERT ON audit_seal FROM ${APP.user}`);
    await sql(`REVOKE EXECUTE ON FUNCTION audit_log_retire_month(date, integer) FROM ${APP.user}`);
    warn = jest.spyOn(Logger.prototype, 'warn');
    stderr = new StderrCapture();
    @Module({
      imports: [
        TypeOrmModule.forRoot({ type: 'postgres', url: url(APP), entities: [AuditLog] }),
        AuditModule.forRoot({
          auditHttp: false,
          integrity: {
            enabled: true,
            intervalMs: 600_000,
            signingKey: keys.privatePem,
            entryKeys: [{ id: 'k1', secret: entryKey }],
            sealerDatabaseUrl: url(SEALER),
          },
        }),
      ],
    })
    class OwnerRoleModule {}
    const moduleRef = await Test.createTestingModule({ imports: [OwnerRoleModule] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    await partitionsChecked(app);
    await app.get(AuditService).log({ action: 'profile_updated', entityType: 'Profile', entityId: 'p-1', userId: 'dee' });
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    warn?.mockRestore();
    stderr?.restore();
    await db?.stop();
  });

  it('warns that the separation is not in force, as the app role can give itself INSERT on audit_seal', async () => {
    const running = app as INestApplication;
    // The start-up check has run once a seal is committed.
    await eventually(async () => {
      await running.get(AuditSealer).sealNow();
      return ((await sql('SELECT count(*)::int AS n FROM audit_seal'))[0].n as number) >= 1;
    }, 30_000);
    const warned = warn.mock.calls.some((call) => String(call[0]).startsWith('AUDIT_SEALER_ROLE_SHARED'));
    // What the warning is for: the app's credentials append a made-up link.
    const link = await asRole(APP, async (role) => {
      await role.query(`GRANT INSERT ON audit_seal TO ${APP.user}`);
      // The owner's too: the database's own checks of a link are triggers on its table.
      await role.query(`ALTER TABLE audit_seal DISABLE TRIGGER USER`);
      return role
        .query(
          `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from)
           SELECT seq + 1, version, hash, last_tx, last_id, horizon, 0, root, manifest, now(), $1::bytea, key_id, signature, entry_auth_from
           FROM audit_seal ORDER BY seq DESC LIMIT 1`,
          [randomBytes(32)],
        )
        .then(
          () => 'inserted',
          (error: { code?: string }) => error.code,
        );
    });
    expect({ warned, link }).toEqual({ warned: true, link: '42501' });
  }, 90_000);
});
