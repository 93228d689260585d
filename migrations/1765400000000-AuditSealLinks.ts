import { type MigrationInterface, type QueryRunner } from 'typeorm';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * What the database itself refuses of a new seal (issue 20, docs/INTEGRITY.md, "A seal the
 * sealer cannot authenticate"). The sealer runs as the application's role, so that role holds
 * INSERT on `audit_seal`, and so does whoever holds its credentials. A BEFORE INSERT trigger,
 * `audit_seal_check_link`, refuses (SQLSTATE `23514`, check_violation):
 *
 * - an unsigned seal once any seal of the chain is signed;
 * - a seal whose entry-authentication boundary (`entry_auth_from`) is not the one the first seal
 *   that records a boundary recorded (dropped or moved);
 * - a seal whose `horizon`, `last_tx` or `entry_auth_from` lies ahead of the server's
 *   transaction ids (a horizon no transaction has reached yet).
 *
 * What it cannot check (an Ed25519 signature) the sealer checks before it builds on a seal, and
 * `audit-verify --public-key` names. Like every trigger it does not fire while
 * `session_replication_role` is `replica` (a superuser's restore, which must keep the rows as
 * they were). Its cost per seal: a few index lookups on a signed chain with a boundary, one scan of
 * `audit_seal`'s small rows (the manifests are stored apart) on a chain without signatures.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditSealLinks1765400000000 implements MigrationInterface {
  name = 'AuditSealLinks1765400000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_seal_check_link() RETURNS trigger
      LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
      AS $fn$
      DECLARE
        next_tx bigint := pg_snapshot_xmax(pg_current_snapshot())::text::bigint;
        boundary record;
      BEGIN
        IF NEW.signature IS NULL AND EXISTS (SELECT FROM ${s}.audit_seal AS s WHERE s.signature IS NOT NULL) THEN
          RAISE EXCEPTION 'audit_seal: seal % is not signed, and the chain is: refused', NEW.seq USING ERRCODE = 'check_violation';
        END IF;
        SELECT s.seq, s.entry_auth_from INTO boundary FROM ${s}.audit_seal AS s
          WHERE s.entry_auth_from IS NOT NULL ORDER BY s.seq LIMIT 1;
        IF FOUND AND NEW.entry_auth_from IS DISTINCT FROM boundary.entry_auth_from THEN
          RAISE EXCEPTION 'audit_seal: seal % moves the entry-authentication boundary (%, seal % recorded %): refused',
            NEW.seq, coalesce(NEW.entry_auth_from::text, 'none'), boundary.seq, boundary.entry_auth_from USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.horizon > next_tx OR NEW.last_tx >= next_tx OR NEW.entry_auth_from > next_tx THEN
          RAISE EXCEPTION 'audit_seal: seal % lies ahead of the server''s transaction ids (horizon %, next %): refused',
            NEW.seq, NEW.horizon, next_tx USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
      END
      $fn$`);
    await queryRunner.query(`
      CREATE OR REPLACE TRIGGER audit_seal_check_link BEFORE INSERT ON ${s}.audit_seal
      FOR EACH ROW EXECUTE FUNCTION ${s}.audit_seal_check_link()`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER IF EXISTS audit_seal_check_link ON audit_seal`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS audit_seal_check_link()`);
  }
}
