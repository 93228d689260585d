import { type MigrationInterface, type QueryRunner } from 'typeorm';

/** Both timestamps of a row must be finite times in the years 1 to 9999 (UTC). */
const RANGE_CHECKS = ['occurred_at', 'recorded_at'].map((column) => ({
  name: `audit_log_${column}_range`,
  check: `${column} BETWEEN '0001-01-01 00:00:00+00' AND '9999-12-31 23:59:59.999999+00'`,
}));

/**
 * Makes the columns a seal relies on the database's alone (issue 20):
 *
 * - `tx` is set by a BEFORE INSERT trigger to the inserting transaction's id whatever the
 *   inserter supplied (a tx from the future, none, an old one). The trigger's WHEN clause compares
 *   with the column default first, so an ordinary insert never calls the function. A restore by
 *   `pg_dump` loads the rows before it creates triggers, so restored rows keep their tx.
 * - `occurred_at` and `recorded_at` must lie in the years 1 to 9999: CHECK constraints added
 *   `NOT VALID` (new rows are checked at once), then validated. Adding one takes an ACCESS
 *   EXCLUSIVE lock on `audit_log`, and TypeORM runs the migrations in one transaction, so inserts
 *   wait while the table is scanned to validate (seconds for millions of rows; the module buffers
 *   meanwhile). On a large table run the `ADD CONSTRAINT … NOT VALID` and, in a later
 *   transaction, `VALIDATE CONSTRAINT` (which lets inserts through) beforehand, under these
 *   names: the migration then finds them and does nothing more.
 * - A table that already holds a row outside that range keeps the constraint `NOT VALID` (new
 *   rows are still checked) and the migration raises a WARNING instead of failing the app's
 *   start: such rows are never sealed, and `audit-verify` names each one as `row_invalid`.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditDatabaseColumns1764800000020 implements MigrationInterface {
  name = 'AuditDatabaseColumns1764800000020';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION audit_log_set_tx() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $$
      BEGIN
        NEW.tx := pg_current_xact_id()::text::bigint;
        RETURN NEW;
      END
      $$`);
    await queryRunner.query(`
      CREATE OR REPLACE TRIGGER audit_log_set_tx BEFORE INSERT ON audit_log FOR EACH ROW
      WHEN (NEW.tx IS DISTINCT FROM pg_catalog.pg_current_xact_id()::pg_catalog.text::pg_catalog.int8)
      EXECUTE FUNCTION audit_log_set_tx()`);
    for (const { name, check } of RANGE_CHECKS) {
      const [{ found }] = (await queryRunner.query(
        `SELECT count(*)::int AS found FROM pg_catalog.pg_constraint WHERE conrelid = 'audit_log'::regclass AND conname = $1`,
        [name],
      )) as { found: number }[];
      if (found === 0) await queryRunner.query(`ALTER TABLE audit_log ADD CONSTRAINT ${name} CHECK (${check}) NOT VALID`);
      // Validation fails on a row stored before; inside a block of its own, that failure is a warning.
      await queryRunner.query(`
        DO $$ BEGIN
          ALTER TABLE audit_log VALIDATE CONSTRAINT ${name};
        EXCEPTION WHEN check_violation THEN
          RAISE WARNING 'audit_log holds rows that violate ${name}: it stays NOT VALID (new rows are checked); audit-verify names them';
        END $$`);
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const { name } of RANGE_CHECKS) await queryRunner.query(`ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS ${name}`);
    await queryRunner.query(`DROP TRIGGER IF EXISTS audit_log_set_tx ON audit_log`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS audit_log_set_tx()`);
  }
}
