import { type MigrationInterface, type QueryRunner } from 'typeorm';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * The right to erasure on a sealed trail (issue 22, docs/PRIVACY.md):
 *
 * - `audit_log.personal`: a row's personal values kept apart (JSON text: the row's random salt and
 *   the values of its `personalData` paths), or, once erased, `{"erased":"<erasure id>"}`.
 * - `audit_log.commitments`: one commitment a personal value (SHA-256 of the salt, the path and
 *   the value), written once. The seal and the entry code of a row that has it (row encoding
 *   version 2) cover the commitments instead of the values, so erasing the values breaks neither.
 * - `audit_log_refuse_change()` now lets one UPDATE through: the erasure, made by
 *   `audit_log_erase` in its own transaction, which only replaces the actor columns by
 *   `[ERASED]` and `personal` by the erased marker, and changes nothing else. Every other UPDATE,
 *   every DELETE and TRUNCATE is refused as before.
 * - `audit_log_erase(user_id, entity_type, entity_id, erasure, dry_run)`: a SECURITY DEFINER
 *   function, owned by the migration's role, that erases the personal values of every row of a
 *   user (as actor) or of an entity, across all partitions, and answers each row it matched with
 *   its state (`erased`, `already_erased`, `not_erasable` for rows written before commitments).
 *   EXECUTE is revoked from PUBLIC: grant it to the application's role.
 *
 * Both columns are nullable without a default: adding them rewrites nothing.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditErasure1765200000000 implements MigrationInterface {
  name = 'AuditErasure1765200000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    await queryRunner.query(`ALTER TABLE ${s}.audit_log ADD COLUMN IF NOT EXISTS personal text`);
    await queryRunner.query(`ALTER TABLE ${s}.audit_log ADD COLUMN IF NOT EXISTS commitments text`);
    // The one change allowed: the erasure's, flagged by audit_log_erase for its own transaction.
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
      BEGIN
        IF TG_OP = 'UPDATE' AND TG_LEVEL = 'ROW' AND current_setting('audit_log.erasing', true) = 'on' THEN
          IF OLD.commitments IS NOT NULL AND OLD.personal IS NOT NULL AND OLD.personal NOT LIKE '{"erased":%'
            AND (NEW.id, NEW.tx, NEW.occurred_at, NEW.action, NEW.entity_type, NEW.entity_id, NEW.outcome, NEW.request_id,
                 NEW.changes, NEW.metadata, NEW.auth_code, NEW.recorded_at, NEW.commitments)
              IS NOT DISTINCT FROM
                (OLD.id, OLD.tx, OLD.occurred_at, OLD.action, OLD.entity_type, OLD.entity_id, OLD.outcome, OLD.request_id,
                 OLD.changes, OLD.metadata, OLD.auth_code, OLD.recorded_at, OLD.commitments)
            AND NEW.user_id IS NOT DISTINCT FROM (CASE WHEN OLD.user_id IS NULL THEN NULL ELSE '[ERASED]' END)
            AND NEW.ip IS NOT DISTINCT FROM (CASE WHEN OLD.ip IS NULL THEN NULL ELSE '[ERASED]' END)
            AND NEW.user_agent IS NOT DISTINCT FROM (CASE WHEN OLD.user_agent IS NULL THEN NULL ELSE '[ERASED]' END)
            AND NEW.personal ~ '^\\{"erased":"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"\\}$'
          THEN
            RETURN NEW;
          END IF;
        END IF;
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
      END
      $fn$`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_erase(by_user_id text, by_entity_type text, by_entity_id text, erasure uuid, dry_run boolean)
      RETURNS TABLE (id uuid, occurred_at timestamptz, state text)
      LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s'
      AS $fn$
      BEGIN
        IF (by_user_id IS NULL) = (by_entity_type IS NULL) OR (by_entity_type IS NULL) <> (by_entity_id IS NULL) THEN
          RAISE EXCEPTION 'audit_log_erase needs a user id, or an entity type and id' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF erasure IS NULL OR dry_run IS NULL THEN
          RAISE EXCEPTION 'audit_log_erase needs an erasure id and dry_run' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM set_config('audit_log.erasing', 'on', true);
        RETURN QUERY
          WITH matched AS (
            SELECT l.id, l.occurred_at,
              CASE WHEN l.commitments IS NULL THEN 'not_erasable'
                   WHEN l.personal LIKE '{"erased":%' THEN 'already_erased' ELSE 'erased' END AS state
            FROM ${s}.audit_log AS l
            WHERE (by_user_id IS NOT NULL AND l.user_id = by_user_id)
               OR (by_entity_type IS NOT NULL AND l.entity_type = by_entity_type AND l.entity_id = by_entity_id)
          ), changed AS (
            UPDATE ${s}.audit_log AS l SET
              user_id = CASE WHEN l.user_id IS NULL THEN NULL ELSE '[ERASED]' END,
              ip = CASE WHEN l.ip IS NULL THEN NULL ELSE '[ERASED]' END,
              user_agent = CASE WHEN l.user_agent IS NULL THEN NULL ELSE '[ERASED]' END,
              personal = '{"erased":"' || erasure::text || '"}'
            FROM matched AS m
            WHERE NOT dry_run AND m.state = 'erased' AND l.id = m.id AND l.occurred_at = m.occurred_at
              AND l.personal NOT LIKE '{"erased":%'
            RETURNING l.id
          )
          -- A row another erasure took first (a concurrent one) is answered as already erased.
          SELECT m.id, m.occurred_at,
            CASE WHEN m.state = 'erased' AND NOT dry_run AND c.id IS NULL THEN 'already_erased' ELSE m.state END
          FROM matched AS m LEFT JOIN changed AS c ON c.id = m.id
          ORDER BY m.occurred_at, m.id;
        PERFORM set_config('audit_log.erasing', 'off', true);
      END
      $fn$`);
    await queryRunner.query(`REVOKE ALL ON FUNCTION ${s}.audit_log_erase(text, text, text, uuid, boolean) FROM PUBLIC`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION IF EXISTS audit_log_erase(text, text, text, uuid, boolean)`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
      END
      $$`);
    await queryRunner.query(`ALTER TABLE audit_log DROP COLUMN IF EXISTS commitments`);
    await queryRunner.query(`ALTER TABLE audit_log DROP COLUMN IF EXISTS personal`);
  }
}
