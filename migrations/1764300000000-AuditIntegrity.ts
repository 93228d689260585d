import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Prepares `audit_log` for sealing (issue 11, `integrity: { enabled: true }`) and creates the
 * append-only `audit_seal` table.
 *
 * - `audit_log.tx`: the id of the transaction that inserted the row, set by the database
 *   (`DEFAULT pg_current_xact_id()`). Added without a default first and then given one, so the
 *   table is not rewritten; rows older than this migration keep NULL and are sealed first, by id.
 * - A BRIN index on `tx` (rows arrive in `tx` order, nearly): a few pages per million rows, and
 *   next to no cost on insert.
 * - `audit_seal`: one row per seal, refused UPDATE, DELETE and TRUNCATE like `audit_log`. The
 *   application role needs `GRANT INSERT, SELECT ON audit_seal TO app_role` when sealing is on.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditIntegrity1764300000000 implements MigrationInterface {
  name = 'AuditIntegrity1764300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS tx bigint`);
    await queryRunner.query(`ALTER TABLE audit_log ALTER COLUMN tx SET DEFAULT (pg_current_xact_id()::text::bigint)`);
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS audit_log_tx_idx ON audit_log USING brin (tx) WITH (autosummarize = on)`);
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS audit_seal (
        seq        bigint PRIMARY KEY CHECK (seq > 0),
        version    smallint NOT NULL,
        prev_hash  bytea NOT NULL,
        last_tx    bigint,
        last_id    uuid NOT NULL,
        horizon    bigint NOT NULL,
        row_count  integer NOT NULL,
        root       bytea NOT NULL,
        manifest   bytea NOT NULL,
        sealed_at  timestamptz NOT NULL,
        hash       bytea NOT NULL,
        key_id     text,
        signature  bytea
      )`);
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS audit_seal_sealed_at_idx ON audit_seal (sealed_at)`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION audit_seal_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_seal is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
      END
      $$`);
    await queryRunner.query(`
      CREATE OR REPLACE TRIGGER audit_seal_no_update_delete BEFORE UPDATE OR DELETE ON audit_seal
      FOR EACH ROW EXECUTE FUNCTION audit_seal_refuse_change()`);
    await queryRunner.query(`
      CREATE OR REPLACE TRIGGER audit_seal_no_truncate BEFORE TRUNCATE ON audit_seal
      FOR EACH STATEMENT EXECUTE FUNCTION audit_seal_refuse_change()`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE IF EXISTS audit_seal`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS audit_seal_refuse_change()`);
    await queryRunner.query(`DROP INDEX IF EXISTS audit_log_tx_idx`);
    await queryRunner.query(`ALTER TABLE audit_log DROP COLUMN IF EXISTS tx`);
  }
}
