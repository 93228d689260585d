import { type MigrationInterface, type QueryRunner } from 'typeorm';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** A single-quoted SQL literal. */
const lit = (text: string) => `'${text.replaceAll("'", "''")}'`;

/**
 * `audit_log_erase` replaced (same signature, owner, SECURITY DEFINER, settings and grant): it
 * runs as the trail's owner, and a trigger fires as the role that runs the statement, so a
 * trigger another role put on the tables it writes (`audit_log`, its partitions,
 * `audit_erasure_id`: a role granted TRIGGER on them, `GRANT ALL` gives it) would run that role's
 * code as the owner, which may grant itself anything on the trail, INSERT on `audit_seal`
 * included (docs/INTEGRITY.md, "Roles"). Before it writes, the function locks those tables
 * (ROW EXCLUSIVE, the lock its UPDATE takes: no trigger can be made on them until its commit) and
 * refuses (`insufficient_privilege`, naming each trigger, nothing written) while a trigger the
 * owner did not provide would fire on what it runs (an UPDATE of `audit_log` or a partition, any
 * statement on `audit_erasure_id`): one whose function the function's owner does not own, or
 * with a `WHEN` condition (which may call any function). The migrations' triggers there
 * (`audit_log_no_update_delete`) call the owner's function without a condition. A dry run
 * refuses too: its UPDATE fires statement triggers even when it changes no row.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditEraseRefusesForeignTriggers1766900000000 implements MigrationInterface {
  name = 'AuditEraseRefusesForeignTriggers1766900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    await queryRunner.query(eraseFunction(ident(schema), true));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    await queryRunner.query(eraseFunction(ident(schema), false));
  }
}

/**
 * `audit_log_erase` as `AuditEntityChanges1766600000000` made it, or (`guarded`) refusing to run
 * while a trigger its owner did not provide is on the tables it writes.
 */
function eraseFunction(s: string, guarded: boolean): string {
  const guard = guarded
    ? `
        LOCK TABLE ${s}.audit_log, ${s}.audit_erasure_id IN ROW EXCLUSIVE MODE;
        SELECT pg_catalog.string_agg(pg_catalog.format('%I on %s', t.tgname, t.tgrelid::pg_catalog.regclass), ', '
                 ORDER BY t.tgrelid::pg_catalog.regclass::pg_catalog.text, t.tgname)
          INTO foreign_triggers
          FROM pg_catalog.pg_trigger AS t JOIN pg_catalog.pg_proc AS p ON p.oid = t.tgfoid
         WHERE NOT t.tgisinternal
           AND ((t.tgrelid IN (SELECT r.relid FROM pg_catalog.pg_partition_tree(${lit(`${s}.audit_log`)}::pg_catalog.regclass) AS r)
                 AND t.tgtype & 16 <> 0)
                OR t.tgrelid = ${lit(`${s}.audit_erasure_id`)}::pg_catalog.regclass)
           AND (p.proowner IS DISTINCT FROM (SELECT o.oid FROM pg_catalog.pg_roles AS o WHERE o.rolname = current_user)
                OR t.tgqual IS NOT NULL);
        IF foreign_triggers IS NOT NULL THEN
          RAISE EXCEPTION 'audit_log_erase refuses to run while a trigger its owner did not provide is on the tables it writes: %', foreign_triggers
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'it would run as the trail''s owner: drop it, and revoke TRIGGER on the trail''s tables from every role but their owner (docs/INTEGRITY.md, "Roles")';
        END IF;`
    : '';
  return `
      CREATE OR REPLACE FUNCTION ${s}.audit_log_erase(by_user_id text, by_entity_type text, by_entity_id text, erasure uuid, dry_run boolean)
      RETURNS TABLE (id uuid, occurred_at timestamptz, state text)
      LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s'
      AS $fn$
      DECLARE
        ref_text jsonb;
        ref_number jsonb;${guarded ? '\n        foreign_triggers text;' : ''}
      BEGIN
        IF (by_user_id IS NULL) = (by_entity_type IS NULL) OR (by_entity_type IS NULL) <> (by_entity_id IS NULL) THEN
          RAISE EXCEPTION 'audit_log_erase needs a user id, or an entity type and id' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF erasure IS NULL OR dry_run IS NULL THEN
          RAISE EXCEPTION 'audit_log_erase needs an erasure id and dry_run' USING ERRCODE = 'invalid_parameter_value';
        END IF;${guard}
        ref_text := pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('type', by_entity_type, 'id', by_entity_id));
        IF by_entity_id ~ '^-?(0|[1-9][0-9]*)$' THEN
          ref_number := pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('type', by_entity_type, 'id', by_entity_id::numeric));
        END IF;
        -- One call per erasure id: no later call can mark more rows with an erasure already made.
        IF NOT dry_run THEN
          INSERT INTO ${s}.audit_erasure_id AS u (erasure) VALUES (erasure) ON CONFLICT DO NOTHING;
          IF NOT FOUND THEN
            RAISE EXCEPTION 'erasure id % was used already: each erasure has its own id', erasure USING ERRCODE = 'unique_violation';
          END IF;
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
               OR (by_entity_type IS NOT NULL AND l.changes ? 'entities'
                   AND (l.changes -> 'entities' @> ref_text OR l.changes -> 'entities' @> ref_number))
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
      $fn$`;
}
