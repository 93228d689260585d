// Promise (docs/INTEGRITY.md, "Roles"): "Checked at start: with `sealerDatabaseUrl` set but the
// app's role still able to insert into `audit_seal` (`has_table_privilege`), the module logs the
// warning `AUDIT_SEALER_ROLE_SHARED: … the separation is not in force`".
//
// Break: the check asks `has_table_privilege` for the app's role itself. A role that is a member
// of the sealer's role without inheriting its privileges (a `NOINHERIT` login role, as some
// platforms make them, or `GRANT sealer_role TO app_role WITH INHERIT FALSE`) is answered false,
// yet `SET ROLE sealer_role` gives it every privilege of the sealer: INSERT on `audit_seal` and
// EXECUTE on `audit_log_retire_month`. The separation is not in force and nothing says so.
//
// Observed: no AUDIT_SEALER_ROLE_SHARED warning; the app's credentials `SET ROLE sealer_role` and
// then hold INSERT on audit_seal and EXECUTE on audit_log_retire_month.
// Severity: medium (a grant an operator may make "so that the app can run retention by hand").
// Fix guess: also ask `pg_has_role(current_user, <sealer role>, 'SET')` / whether any role the
// app's role may SET to holds INSERT on the seal table (walk `pg_auth_members` with set_option).
import { type INestApplication, Logger, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AuditLog, AuditModule, AuditSealer, AuditService } from '../src/audit';
import { migrateWithPastBound } from './support/past-months';
import { eventually, partitionsChecked } from './support/app';
import { sealingKeys } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

describe('probe: the app role may SET ROLE to the sealer role (no inherited privileges)', () => {
  const database = 'probe_member_roles';
  const keys = sealingKeys();
  const entryKey = randomBytes(32).toString('base64');
  const APP = { user: 'app_role', password: 'app-role-pw' };
  const SEALER = { user: 'sealer_role', password: 'sealer-role-pw' };
  let db: TestPostgres;
  let app: INestApplication | undefined;
  let stderr: StderrCapture;
  let warn: jest.SpyInstance;

  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  const url = (role: { user: string; password: string }) => db.url(database, role.user, role.password);

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await migrateWithPastBound(db, database, 1);
    await sql(`CREATE ROLE ${APP.user} LOGIN NOINHERIT PASSWORD '${APP.password}'`);
    await sql(`CREATE ROLE ${SEALER.user} LOGIN PASSWORD '${SEALER.password}'`);
    // docs/INTEGRITY.md, "Roles", as written.
    await sql(`GRANT INSERT, SELECT ON audit_log TO app_role`);
    await sql(`GRANT SELECT ON audit_seal TO app_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_create_partitions(integer) TO app_role`);
    await sql(`GRANT SELECT ON audit_log TO sealer_role`);
    await sql(`GRANT INSERT, SELECT ON audit_seal TO sealer_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_retire_month(date, integer) TO sealer_role`);
    // The one grant more: the app's role is a member of the sealer's (inheriting nothing, as a NOINHERIT role).
    await sql(`GRANT sealer_role TO app_role`);
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
    class MemberRoleModule {}
    const moduleRef = await Test.createTestingModule({ imports: [MemberRoleModule] }).compile();
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

  it('warns that the separation is not in force, as the app role can act as the sealer role', async () => {
    const running = app as INestApplication;
    // The start-up check has run once a seal is committed.
    await eventually(async () => {
      await running.get(AuditSealer).sealNow();
      return ((await sql('SELECT count(*)::int AS n FROM audit_seal'))[0].n as number) >= 1;
    }, 30_000);
    const warned = warn.mock.calls.some((call) => String(call[0]).startsWith('AUDIT_SEALER_ROLE_SHARED'));
    // What the warning is for: with the app's credentials, the sealer's privileges.
    const client = new Client({ connectionString: url(APP) });
    await client.connect();
    let asSealer: { insert: boolean; retire: boolean };
    try {
      await client.query(`SET ROLE ${SEALER.user}`);
      const { rows } = await client.query<{ insert: boolean; retire: boolean }>(
        `SELECT has_table_privilege('audit_seal', 'INSERT') AS insert,
                has_function_privilege('audit_log_retire_month(date, integer)', 'EXECUTE') AS retire`,
      );
      asSealer = rows[0];
    } finally {
      await client.end();
    }
    expect({ warned, asSealer }).toEqual({ warned: true, asSealer: { insert: false, retire: false } });
  }, 90_000);
});
