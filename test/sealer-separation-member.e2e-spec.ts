import { type INestApplication, Logger, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AuditLog, AuditModule, AuditSealer, AuditService } from '../src/audit';
import { sealerSeparation } from '../src/audit/integrity/sealer-roles';
import { migrateWithPastBound } from './support/past-months';
import { eventually, partitionsChecked } from './support/app';
import { sealingKeys } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/INTEGRITY.md, "Roles": the module warns `AUDIT_SEALER_ROLE_SHARED` when the app's role can
// still append seals, including through a role it is a member of. A member that inherits nothing
// (a NOINHERIT login role, as some platforms make them) holds no privilege of its own, yet
// `SET ROLE sealer_role` gives it every privilege of the sealer.
describe('the sealer separation and the roles the app role is a member of', () => {
  const database = 'member_roles';
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
  /** Starts the app; resolves once a seal is committed (the separation check has run). */
  const start = async () => {
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
    const started = moduleRef.createNestApplication({ logger: false });
    app = started;
    await started.init();
    await partitionsChecked(started);
    // Counted before the entry: the sealer's first attempt, at start, may seal it before the loop below.
    const before = (await sql('SELECT count(*)::int AS n FROM audit_seal'))[0].n as number;
    await started.get(AuditService).log({ action: 'profile_updated', entityType: 'Profile', entityId: 'p-1', userId: 'dee' });
    await eventually(async () => {
      await started.get(AuditSealer).sealNow();
      return ((await sql('SELECT count(*)::int AS n FROM audit_seal'))[0].n as number) > before;
    }, 30_000);
  };
  const sealerWarnings = () => warn.mock.calls.map((call) => String(call[0])).filter((line) => line.includes('AUDIT_SEALER'));
  /** The check gives up on a database slower than its deadlines and runs again at the next attempt: seals until it has warned. */
  const warned = () =>
    eventually(
      async () => {
        if (sealerWarnings().length > 0) return true;
        await (app as INestApplication).get(AuditSealer).sealNow();
        return sealerWarnings().length > 0;
      },
      60_000,
      'the separation warning',
    );

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
    warn = jest.spyOn(Logger.prototype, 'warn');
    stderr = new StderrCapture();
  }, 120_000);

  afterEach(async () => {
    await app?.close();
    app = undefined;
    for (const member of ['sealer_role', 'writers']) {
      if ((await sql(`SELECT to_regrole($1) IS NOT NULL AS known`, [member]))[0].known) await sql(`REVOKE ${member} FROM app_role`);
    }
    warn.mockClear();
    stderr.clear();
  });

  afterAll(async () => {
    warn?.mockRestore();
    stderr?.restore();
    await db?.stop();
  });

  it('warns when the app role, inheriting nothing, is a member of the sealer role', async () => {
    await sql(`GRANT sealer_role TO app_role`);
    await start();
    await warned();
    expect(sealerWarnings()).toEqual([
      expect.stringMatching(
        /^AUDIT_SEALER_ROLE_SHARED: .*application's role app_role can still append seals: it is a member of sealer_role, which holds INSERT on "public"\."audit_seal"\. /,
      ),
    ]);
    // What the warning is for: with the app's credentials, the sealer's privileges.
    const client = new Client({ connectionString: url(APP) });
    await client.connect();
    try {
      const held = `SELECT has_table_privilege('audit_seal', 'INSERT') AS insert, has_function_privilege('audit_log_retire_month(date, integer)', 'EXECUTE') AS retire`;
      expect((await client.query(held)).rows).toEqual([{ insert: false, retire: false }]);
      await client.query(`SET ROLE ${SEALER.user}`);
      expect((await client.query(held)).rows).toEqual([{ insert: true, retire: true }]);
    } finally {
      await client.end();
    }
  }, 120_000);

  it('warns when the app role is a member of a group that may write every table (pg_write_all_data)', async () => {
    await sql(`CREATE ROLE writers NOLOGIN`);
    await sql(`GRANT pg_write_all_data TO writers`);
    await sql(`GRANT writers TO app_role`);
    await start();
    await warned();
    expect(sealerWarnings()).toEqual([
      expect.stringMatching(
        /it is a member of pg_write_all_data, which holds INSERT on "public"\."audit_seal"; it is a member of writers, which holds INSERT/,
      ),
    ]);
  }, 120_000);

  it('does not warn once those memberships are revoked', async () => {
    await start();
    expect(sealerWarnings()).toEqual([]);
    // The check itself, on the app's credentials, finds no way to append seals.
    const client = new Client({ connectionString: url(APP) });
    await client.connect();
    try {
      const query = async (text: string, parameters: unknown[]) => (await client.query(text, parameters)).rows;
      expect(await sealerSeparation(query, '"public"."audit_log"', '"public"."audit_seal"')).toEqual({ appRole: APP.user, gaps: [] });
    } finally {
      await client.end();
    }
  }, 120_000);
});
