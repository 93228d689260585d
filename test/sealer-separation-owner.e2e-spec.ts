import { type INestApplication, Logger, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditSealer, AuditService } from '../src/audit';
import { sealerSeparation } from '../src/audit/integrity/sealer-roles';
import { eventually, partitionsChecked } from './support/app';
import { sealingKeys } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

type Role = { user: string; password: string };

// docs/INTEGRITY.md, "Roles": with the sealer on credentials of its own, the app's role cannot
// append a seal, and the module warns `AUDIT_SEALER_ROLE_SHARED` when it still can. An owner of the
// seal table can, whatever it was granted: it grants itself INSERT again and turns the table's
// triggers off. README step 1 runs the migrations from the app's DataSource, so the app's role owns
// the trail unless a role of its own runs them, as the section shows.
describe('the sealer separation and the owner of the trail', () => {
  const keys = sealingKeys();
  const entryKey = randomBytes(32).toString('base64');
  const APP_OWNER = { user: 'app_owner', password: 'app-owner-pw' };
  const APP = { user: 'app_role', password: 'app-role-pw' };
  const SEALER = { user: 'sealer_role', password: 'sealer-role-pw' };
  const TRAIL_OWNER = { user: 'audit_owner', password: 'audit-owner-pw' };
  const APP_CREATOR = { user: 'app_creator', password: 'app-creator-pw' };
  let db: TestPostgres;
  let app: INestApplication | undefined;
  let stderr: StderrCapture;
  let warn: jest.SpyInstance;

  const url = (database: string, role: Role) => db.url(database, role.user, role.password);
  const asRole = async <T>(database: string, role: Role, work: (client: Client) => Promise<T>): Promise<T> => {
    const client = new Client({ connectionString: url(database, role) });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  const migrate = async (database: string, role: Role, migrationsTableName = 'migrations') => {
    const source = new DataSource({ type: 'postgres', url: url(database, role), migrations: [...AUDIT_MIGRATIONS], migrationsTableName });
    await source.initialize();
    try {
      return (await source.runMigrations()).length;
    } finally {
      await source.destroy();
    }
  };
  /** The app's grants of docs/INTEGRITY.md, "Roles", run by the trail's owner. */
  const appGrants = (database: string, owner: Role, appRole: Role) =>
    asRole(database, owner, async (client) => {
      await client.query(`GRANT INSERT, SELECT ON audit_log TO ${appRole.user}`);
      await client.query(`GRANT SELECT ON audit_seal TO ${appRole.user}`);
      await client.query(`GRANT EXECUTE ON FUNCTION audit_log_create_partitions(integer) TO ${appRole.user}`);
    });
  /** The sealer's grants of docs/INTEGRITY.md, "Roles", run by the trail's owner. */
  const sealerGrants = (database: string, owner: Role) =>
    asRole(database, owner, async (client) => {
      await client.query(`GRANT SELECT ON audit_log TO ${SEALER.user}`);
      await client.query(`GRANT INSERT, SELECT ON audit_seal TO ${SEALER.user}`);
      await client.query(`GRANT EXECUTE ON FUNCTION audit_log_retire_month(date, integer) TO ${SEALER.user}`);
    });
  /** Starts the app on `appRole`'s credentials and the sealer on its own; resolves once a seal is committed (the check has run). */
  const start = async (database: string, appRole: Role) => {
    @Module({
      imports: [
        TypeOrmModule.forRoot({ type: 'postgres', url: url(database, appRole), entities: [AuditLog] }),
        AuditModule.forRoot({
          auditHttp: false,
          integrity: {
            enabled: true,
            intervalMs: 600_000,
            signingKey: keys.privatePem,
            entryKeys: [{ id: 'k1', secret: entryKey }],
            sealerDatabaseUrl: url(database, SEALER),
          },
        }),
      ],
    })
    class SeparationModule {}
    const moduleRef = await Test.createTestingModule({ imports: [SeparationModule] }).compile();
    const started = moduleRef.createNestApplication({ logger: false });
    app = started;
    await started.init();
    await partitionsChecked(started);
    await started.get(AuditService).log({ action: 'profile_updated', entityType: 'Profile', entityId: 'p-1', userId: 'dee' });
    await eventually(async () => {
      await started.get(AuditSealer).sealNow();
      return ((await db.query('SELECT count(*)::int AS n FROM audit_seal', [], database))[0].n as number) >= 1;
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
  /** With the app's credentials: its own INSERT on the seal table, the table's triggers off, a made-up link. */
  const appendLink = (database: string, appRole: Role) =>
    asRole(database, appRole, async (client) => {
      const step = (sql: string, parameters: unknown[] = []) =>
        client.query(sql, parameters).then(
          () => 'done',
          (error: { code?: string }) => error.code,
        );
      return {
        grant: await step(`GRANT INSERT ON audit_seal TO ${appRole.user}`),
        triggersOff: await step(`ALTER TABLE audit_seal DISABLE TRIGGER USER`),
        link: await step(
          `INSERT INTO audit_seal (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature, entry_auth_from)
           SELECT seq + 1, version, hash, last_tx, last_id, horizon, 0, root, manifest, now(), $1::bytea, key_id, signature, entry_auth_from
           FROM audit_seal ORDER BY seq DESC LIMIT 1`,
          [randomBytes(32)],
        ),
      };
    });

  beforeAll(async () => {
    db = await TestPostgres.start();
    for (const role of [APP_OWNER, APP, SEALER, TRAIL_OWNER, APP_CREATOR])
      await db.query(`CREATE ROLE ${role.user} LOGIN PASSWORD '${role.password}'`);
    warn = jest.spyOn(Logger.prototype, 'warn');
    stderr = new StderrCapture();
  }, 120_000);

  afterEach(async () => {
    await app?.close();
    app = undefined;
    warn.mockClear();
    stderr.clear();
  });

  afterAll(async () => {
    warn?.mockRestore();
    stderr?.restore();
    await db?.stop();
  });

  it('warns, naming what it owns, when the app role ran the migrations, though INSERT on audit_seal was revoked from it', async () => {
    const database = 'app_owns_trail';
    await db.createDatabase(database);
    // The app's role owns the database (as a managed service's master user), and so schema public (pg_database_owner's).
    await db.query(`ALTER DATABASE ${database} OWNER TO ${APP_OWNER.user}`);
    await migrate(database, APP_OWNER);
    await sealerGrants(database, APP_OWNER);
    await asRole(database, APP_OWNER, async (client) => {
      await client.query(`REVOKE INSERT ON audit_seal FROM ${APP_OWNER.user}`);
      await client.query(`REVOKE EXECUTE ON FUNCTION audit_log_retire_month(date, integer) FROM ${APP_OWNER.user}`);
    });
    const held = await asRole(
      database,
      APP_OWNER,
      async (client) =>
        (await client.query<{ insert: boolean }>(`SELECT has_table_privilege('audit_seal', 'INSERT') AS insert`)).rows[0].insert,
    );
    expect(held).toBe(false);

    await start(database, APP_OWNER);
    await warned();
    expect(sealerWarnings()).toEqual([
      expect.stringMatching(
        /^AUDIT_SEALER_ROLE_SHARED: .*application's role app_owner can still append seals: it owns "?audit_seal"?, "?audit_log"?, .* more of the trail's objects; it is a member of pg_database_owner, which owns schema public\. .*separation is not in force/,
      ),
    ]);
    // What the warning is for: the app's credentials append a link.
    expect(await appendLink(database, APP_OWNER)).toEqual({ grant: 'done', triggersOff: 'done', link: 'done' });
  }, 120_000);

  it('does not warn with the trail owned by a role of its own, and the app role can neither grant itself INSERT nor turn the triggers off', async () => {
    const database = 'owner_of_its_own';
    await db.createDatabase(database);
    // docs/INTEGRITY.md, "Roles": the owner may create in the schema; it runs the migrations and grants the others.
    await db.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${TRAIL_OWNER.user}`, [], database);
    await migrate(database, TRAIL_OWNER);
    await sealerGrants(database, TRAIL_OWNER);
    await appGrants(database, TRAIL_OWNER, APP);

    await start(database, APP);
    expect(sealerWarnings()).toEqual([]);
    // The check itself, on the app's credentials, finds no way to append seals.
    const check = await asRole(database, APP, async (client) =>
      sealerSeparation(
        async (text, parameters) => (await client.query(text, parameters)).rows,
        '"public"."audit_log"',
        '"public"."audit_seal"',
      ),
    );
    expect(check).toEqual({ appRole: APP.user, gaps: [] });
    const steps = await appendLink(database, APP);
    // GRANT by a role without the privilege grants nothing (a notice, not an error).
    expect(steps).toEqual({ grant: 'done', triggersOff: '42501', link: '42501' });
  }, 120_000);

  it('does not warn once the app role has handed the trail to a role of its own (docs/RUNBOOK.md, section 16)', async () => {
    const database = 'handed_over';
    await db.createDatabase(database);
    await db.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${APP_CREATOR.user}, ${TRAIL_OWNER.user}`, [], database);
    await migrate(database, APP_CREATOR);
    await sealerGrants(database, APP_CREATOR);
    await start(database, APP_CREATOR);
    await warned();
    expect(sealerWarnings()).toEqual([
      expect.stringMatching(/role app_creator can still append seals: it holds INSERT on .* and owns "?audit_seal"?, "?audit_log"?, /),
    ]);
    await app?.close();
    app = undefined;
    warn.mockClear();

    // The hand-over of docs/RUNBOOK.md, section 16.
    await db.query(`GRANT ${TRAIL_OWNER.user} TO ${APP_CREATOR.user}`, [], database);
    await asRole(database, APP_CREATOR, async (client) => {
      await client.query(HAND_OVER_RECORDS);
      await client.query(HAND_OVER);
    });
    await appGrants(database, TRAIL_OWNER, APP_CREATOR);
    await db.query(`REVOKE ${TRAIL_OWNER.user} FROM ${APP_CREATOR.user}`, [], database);
    // Later migrations run as the owner, which finds every one applied.
    expect(await migrate(database, TRAIL_OWNER, 'audit_migrations')).toBe(0);

    await start(database, APP_CREATOR);
    expect(sealerWarnings()).toEqual([]);
    const check = await asRole(database, APP_CREATOR, async (client) =>
      sealerSeparation(
        async (text, parameters) => (await client.query(text, parameters)).rows,
        '"public"."audit_log"',
        '"public"."audit_seal"',
      ),
    );
    expect(check).toEqual({ appRole: APP_CREATOR.user, gaps: [] });
    expect(await appendLink(database, APP_CREATOR)).toEqual({ grant: 'done', triggersOff: '42501', link: '42501' });
  }, 120_000);
});

/** docs/RUNBOOK.md, section 16: the audit migrations recorded where the owner's DataSource looks. */
const HAND_OVER_RECORDS = `
CREATE TABLE audit_migrations (id serial PRIMARY KEY, "timestamp" bigint NOT NULL, name varchar NOT NULL);
INSERT INTO audit_migrations ("timestamp", name)
  SELECT "timestamp", name FROM migrations WHERE name ~ '^(CreateAuditLog|Audit[A-Za-z]+)[0-9]+$' ORDER BY id;`;

/** docs/RUNBOOK.md, section 16: every table and function of the trail the app's role owns, to audit_owner. */
const HAND_OVER = `
DO $$ DECLARE statement text; BEGIN
  FOR statement IN
    SELECT format('ALTER TABLE %s OWNER TO audit_owner', c.oid::regclass) FROM pg_class AS c
    WHERE c.relowner = current_user::regrole AND c.relkind IN ('r', 'p')
      AND (c.oid IN (SELECT relid FROM pg_partition_tree('audit_log'))
           OR c.relname IN ('audit_seal', 'audit_seal_month', 'audit_seal_month_erasure', 'audit_seal_recorded',
                            'audit_month_check', 'audit_month_chunk', 'audit_erasure_id', 'audit_migrations'))
    UNION ALL
    SELECT format('ALTER FUNCTION %s OWNER TO audit_owner', p.oid::regprocedure) FROM pg_proc AS p
    WHERE p.proowner = current_user::regrole AND (p.proname LIKE 'audit\\_log\\_%' OR p.proname LIKE 'audit\\_seal\\_%')
  LOOP
    EXECUTE statement;
  END LOOP;
END $$;`;
