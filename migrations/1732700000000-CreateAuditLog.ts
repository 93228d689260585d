import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Creates the append-only `audit_log` table, its indexes, and the triggers that make the database
 * itself refuse UPDATE, DELETE and TRUNCATE. The application role needs only
 * `GRANT INSERT, SELECT ON audit_log TO app_role`.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [CreateAuditLog1732700000000], migrationsRun: true });
 */
export class CreateAuditLog1732700000000 implements MigrationInterface {
  name = 'CreateAuditLog1732700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS audit_log (
        id          uuid PRIMARY KEY,
        occurred_at timestamptz NOT NULL,
        action      text NOT NULL,
        entity_type text,
        entity_id   text,
        user_id     text,
        outcome     text NOT NULL CHECK (outcome IN ('success', 'failure')),
        ip          text,
        user_agent  text,
        request_id  text,
        changes     jsonb,
        metadata    jsonb,
        recorded_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS audit_log_entity_idx ON audit_log (entity_type, entity_id)`);
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS audit_log_user_time_idx ON audit_log (user_id, occurred_at)`);
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS audit_log_action_time_idx ON audit_log (action, occurred_at)`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
      END
      $$`);
    await queryRunner.query(`
      CREATE OR REPLACE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
      FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()`);
    await queryRunner.query(`
      CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
      FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE IF EXISTS audit_log`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS audit_log_refuse_change()`);
  }
}
