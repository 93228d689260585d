import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { refuseForeignTriggers } from '../migrations/1764999000000-AuditMigrationsRefuseForeignTriggers';
import { AUDIT_MIGRATIONS } from '../src/audit';
import { TestPostgres } from './support/postgres';

// docs/INTEGRITY.md "Roles": the app's role may read seals but never write them, and a trigger it
// may make on the trail's tables is no way around that. Migrations run as the trail's owner, and a
// trigger fires as the role running the statement: an install from before the partitions whose app
// role held TRIGGER on audit_log (`GRANT ALL`) can hold a statement trigger there that acts only
// when another role runs a statement, and AuditPartitions1765000000000 deletes from the table it
// renames. The migrations refuse to go on while such a trigger is there, naming it; once the owner
// drops it, they run.
describe('a trigger the app role made before the partitions, at the upgrade', () => {
  const database = 'upgrade_foreign_trigger';
  const APP = { user: 'app_role', password: 'app-role-pw' };
  let db: TestPostgres;
  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  // A release before the partitions had neither them nor the migrations' refusal.
  const cut = AUDIT_MIGRATIONS.findIndex((m) => m.name === 'AuditMigrationsRefuseForeignTriggers1764999000000');
  const migrate = async (migrations: readonly unknown[]) => {
    const source = new DataSource({ type: 'postgres', url: db.url(database), migrations: [...(migrations as never[])] });
    await source.initialize();
    try {
      await source.runMigrations();
    } finally {
      await source.destroy();
    }
  };
  const asApp = async <T>(run: (client: Client) => Promise<T>): Promise<T> => {
    const client = new Client({ connectionString: db.url(database, APP.user, APP.password) });
    await client.connect();
    try {
      return await run(client);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    // The trail as it was before the partitions, the app's role granted more than INSERT and SELECT.
    await migrate(AUDIT_MIGRATIONS.slice(0, cut));
    await sql(`CREATE ROLE ${APP.user} LOGIN PASSWORD '${APP.password}'`);
    await sql(`GRANT INSERT, SELECT, TRIGGER ON audit_log TO app_role`);
    await sql(`GRANT SELECT ON audit_seal TO app_role`);
    await sql(`CREATE SCHEMA app_data AUTHORIZATION app_role`);
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
  });

  it("the app role holds no INSERT on audit_seal after the owner's migrations", async () => {
    await asApp(async (client) => {
      await client.query(`CREATE TABLE app_data.fired (what text)`);
      await client.query(`GRANT INSERT ON app_data.fired TO PUBLIC`);
      await client.query(`CREATE FUNCTION app_data.wait() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF current_user <> 'app_role' THEN
            EXECUTE 'GRANT INSERT ON public.audit_seal TO app_role';
            INSERT INTO app_data.fired VALUES (TG_OP || ' on ' || TG_TABLE_NAME || ' as ' || current_user);
          END IF;
          RETURN NULL;
        END $$`);
      await client.query(
        `CREATE TRIGGER wait AFTER INSERT OR UPDATE OR DELETE ON public.audit_log FOR EACH STATEMENT EXECUTE FUNCTION app_data.wait()`,
      );
      // The app's own writes go on as before.
      await client.query(
        `INSERT INTO public.audit_log (id, occurred_at, action, outcome) VALUES (gen_random_uuid(), now(), 'nda_created', 'success')`,
      );
    });
    // The upgrade, as the trail's owner: refused before any migration writes a row.
    await expect(migrate(AUDIT_MIGRATIONS)).rejects.toThrow(
      /AuditMigrationsRefuseForeignTriggers1764999000000: the migrations refuse to run while a trigger the trail's owner did not provide is on its tables: wait on audit_log\. .*REVOKE|revoke TRIGGER/,
    );
    const held = async () =>
      asApp(
        async (client) =>
          (await client.query<{ insert: boolean }>(`SELECT has_table_privilege('public.audit_seal', 'INSERT') AS insert`)).rows[0].insert,
      );
    const fired = async () => (await sql(`SELECT what FROM app_data.fired`)).map((row) => row.what);
    expect({ insert: await held(), fired: await fired() }).toEqual({ insert: false, fired: [] });
    const partitioned = async () => (await sql(`SELECT relkind FROM pg_class WHERE oid = 'audit_log'::regclass`))[0].relkind;
    expect(await partitioned()).toBe('r');

    // As the owner: the trigger dropped, TRIGGER revoked. The upgrade then runs to its end.
    await sql(`DROP TRIGGER wait ON audit_log`);
    await sql(`REVOKE TRIGGER ON audit_log FROM app_role`);
    await migrate(AUDIT_MIGRATIONS);
    expect({ insert: await held(), fired: await fired(), kind: await partitioned() }).toEqual({ insert: false, fired: [], kind: 'p' });
  }, 120_000);

  it("refuses a trigger that runs the owner's function under a WHEN condition of another role's", async () => {
    await sql(`GRANT TRIGGER ON audit_log TO app_role`);
    await asApp(async (client) => {
      await client.query(`CREATE FUNCTION app_data.sly() RETURNS boolean LANGUAGE sql AS 'SELECT true'`);
      await client.query(
        `CREATE TRIGGER sly AFTER DELETE ON public.audit_log FOR EACH STATEMENT WHEN (app_data.sly()) EXECUTE FUNCTION public.audit_log_refuse_change()`,
      );
    });
    const source = new DataSource({ type: 'postgres', url: db.url(database) });
    await source.initialize();
    const runner = source.createQueryRunner();
    try {
      await expect(refuseForeignTriggers(runner, 'NextMigration')).rejects.toThrow(/^NextMigration: .* on its tables: sly on audit_log\. /);
      await sql(`DROP TRIGGER sly ON audit_log`);
      await expect(refuseForeignTriggers(runner, 'NextMigration')).resolves.toBeUndefined();
    } finally {
      await runner.release();
      await source.destroy();
      await sql(`REVOKE TRIGGER ON audit_log FROM app_role`);
    }
  });
});
