import { Client } from 'pg';
import { sealerSeparation } from '../src/audit/integrity/sealer-roles';
import { migrateWithPastBound } from './support/past-months';
import { TestPostgres } from './support/postgres';

// The app's role may read seals but never write them (docs/INTEGRITY.md, "Roles"), and a trigger it
// may make on the trail's tables is no way around that. An app's role granted TRIGGER on audit_log
// (`GRANT ALL ON audit_log` gives it) can make a statement trigger on it; `audit_log_erase`, which the
// documented grants let it call, runs as the trail's owner, and a trigger fires as the role that runs
// the statement, so the trigger's function would run as the owner and could grant the app's role
// INSERT on audit_seal. Two layers hold:
// - start-up's separation check names the TRIGGER privilege as a gap (`AUDIT_SEALER_ROLE_SHARED`),
//   before any trigger is made;
// - `audit_log_erase` (since AuditEraseRefusesForeignTriggers1766900000000) refuses to run, a dry
//   run too, while a trigger its owner did not provide is on the tables it writes, naming it; the
//   trigger never runs and the app's role gets no INSERT on audit_seal. Once it is dropped, erasure runs.
describe('a trigger the app role may make on audit_log never runs as the trail owner', () => {
  const database = 'sealer_separation_trigger';
  const APP = { user: 'app_role', password: 'app-role-pw' };
  let db: TestPostgres;

  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await migrateWithPastBound(db, database, 1);
    await sql(`CREATE ROLE ${APP.user} LOGIN PASSWORD '${APP.password}'`);
    await sql(`CREATE ROLE sealer_role LOGIN PASSWORD 'sealer-role-pw'`);
    // docs/INTEGRITY.md, "Roles", as written (with privacy) ...
    await sql(`GRANT INSERT, SELECT ON audit_log TO app_role`);
    await sql(`GRANT SELECT ON audit_seal TO app_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_create_partitions(integer) TO app_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_erase(text, text, text, uuid, boolean) TO app_role`);
    await sql(`GRANT SELECT ON audit_log TO sealer_role`);
    await sql(`GRANT INSERT, SELECT ON audit_seal TO sealer_role`);
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_retire_month(date, integer) TO sealer_role`);
    // ... plus TRIGGER on audit_log (part of GRANT ALL), and a schema of the app's own for its tables.
    await sql(`GRANT TRIGGER ON audit_log TO app_role`);
    await sql(`CREATE SCHEMA app_data AUTHORIZATION app_role`);
  }, 120_000);

  afterEach(async () => {
    await sql(`DROP TRIGGER IF EXISTS grab ON audit_log`);
    await sql(`DROP TRIGGER IF EXISTS grab_when ON audit_log`);
    await sql(`REVOKE INSERT ON audit_seal FROM app_role`);
  });

  afterAll(async () => {
    await db?.stop();
  });

  it('the separation check names TRIGGER on audit_log as a way, before any trigger is made', async () => {
    const client = new Client({ connectionString: db.url(database, APP.user, APP.password) });
    await client.connect();
    try {
      const query = async (text: string, parameters: unknown[]) => (await client.query(text, parameters)).rows;
      const check = await sealerSeparation(query, '"public"."audit_log"', '"public"."audit_seal"');
      expect(check).toEqual({
        appRole: APP.user,
        gaps: [
          {
            role: APP.user,
            own: true,
            superuser: false,
            insert: false,
            owns: [],
            runsAsOwner: [expect.stringMatching(/^TRIGGER on ("public"\.|public\.)?audit_log$/) as unknown],
          },
        ],
      });
    } finally {
      await client.end();
    }
  }, 120_000);

  it('the separation check names MAINTAIN on a trail table granted to PUBLIC, and membership of pg_maintain', async () => {
    const [{ version }] = await sql(`SELECT current_setting('server_version_num')::int AS version`);
    expect(version).toBeGreaterThanOrEqual(170000);
    await sql(`GRANT MAINTAIN ON audit_seal TO PUBLIC`);
    await sql(`GRANT pg_maintain TO app_role`);
    const client = new Client({ connectionString: db.url(database, APP.user, APP.password) });
    await client.connect();
    try {
      const query = async (text: string, parameters: unknown[]) => (await client.query(text, parameters)).rows;
      const { gaps } = await sealerSeparation(query, '"public"."audit_log"', '"public"."audit_seal"');
      expect(gaps.map(({ role, runsAsOwner }) => ({ role, runsAsOwner }))).toEqual([
        {
          role: APP.user,
          runsAsOwner: [
            expect.stringMatching(/^MAINTAIN on ("public"\.|public\.)?audit_seal$/) as unknown,
            expect.stringMatching(/^TRIGGER on ("public"\.|public\.)?audit_log$/) as unknown,
          ],
        },
        { role: 'pg_maintain', runsAsOwner: ['MAINTAIN on every table'] },
      ]);
    } finally {
      await client.end();
      await sql(`REVOKE MAINTAIN ON audit_seal FROM PUBLIC`);
      await sql(`REVOKE pg_maintain FROM app_role`);
    }
  }, 120_000);

  it("audit_log_erase refuses to run while the app role's trigger is on audit_log, a dry run too: the trigger never runs", async () => {
    const client = new Client({ connectionString: db.url(database, APP.user, APP.password) });
    await client.connect();
    try {
      const insertHeld = async () =>
        (await client.query<{ insert: boolean }>(`SELECT has_table_privilege('public.audit_seal', 'INSERT') AS insert`)).rows[0].insert;
      // With the app's own credentials only:
      await client.query(`CREATE OR REPLACE FUNCTION app_data.grab() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          EXECUTE 'GRANT INSERT ON public.audit_seal TO app_role';
          RETURN NULL;
        END $$`);
      await client.query(`CREATE TRIGGER grab AFTER UPDATE ON public.audit_log FOR EACH STATEMENT EXECUTE FUNCTION app_data.grab()`);
      const erase = async (dryRun: boolean) => {
        try {
          await client.query(`SELECT * FROM public.audit_log_erase('nobody', NULL, NULL, gen_random_uuid(), $1)`, [dryRun]);
          return 'ran';
        } catch (error) {
          const { code, message } = error as { code: string; message: string };
          return `${code}: ${message}`;
        }
      };
      const refusal =
        '42501: audit_log_erase refuses to run while a trigger its owner did not provide is on the tables it writes: grab on public.audit_log';
      expect({ dry: await erase(true), real: await erase(false), insert: await insertHeld() }).toEqual({
        dry: refusal,
        real: refusal,
        insert: false,
      });

      // Only the table's owner may drop it (TRIGGER lets a role make one, not drop it).
      await sql(`DROP TRIGGER grab ON audit_log`);

      // The owner's own trigger function, with a condition that runs the app role's code: refused too.
      await client.query(`CREATE FUNCTION app_data.grab_when() RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
          EXECUTE 'GRANT INSERT ON public.audit_seal TO app_role';
          RETURN false;
        END $$`);
      await client.query(
        `CREATE TRIGGER grab_when AFTER UPDATE ON public.audit_log FOR EACH STATEMENT WHEN (app_data.grab_when()) EXECUTE FUNCTION public.audit_log_refuse_change()`,
      );
      expect({ dry: await erase(true), insert: await insertHeld() }).toEqual({
        dry: refusal.replace('grab on', 'grab_when on'),
        insert: false,
      });
      await sql(`DROP TRIGGER grab_when ON audit_log`);
      expect({ dry: await erase(true), real: await erase(false), insert: await insertHeld() }).toEqual({
        dry: 'ran',
        real: 'ran',
        insert: false,
      });
    } finally {
      await client.end();
    }
  }, 120_000);
});
