import { type MigrationInterface, type QueryRunner } from 'typeorm';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** A single-quoted SQL literal. */
const lit = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** The index of the rows whose `changes.entities` names entities, on `audit_log` (and on each partition: `<partition>_entities_idx`). */
const INDEX = 'audit_log_entities_idx';

/**
 * The index's method, key, options and predicate: the same on the parent and on every partition,
 * as ATTACH requires. Without a pending list (`fastupdate = off`) a lookup reads the index alone,
 * not up to 4 MiB of entries not merged yet: a history page stays within its target.
 */
const INDEX_BODY = `USING gin ((changes -> 'entities') jsonb_path_ops) WITH (fastupdate = off) WHERE changes ? 'entities'`;

/** A partition at most this large gets its index built inside the migration's transaction (a build of well under a second). */
const SMALL_PARTITION_BYTES = 64 * 1024 * 1024;

/**
 * An entity's changes found wherever the trail recorded them (docs/GUIDE.md "History",
 * docs/PRIVACY.md "Erasure"). One transaction may change several entities; their changes all sit
 * in `changes.entities` of the request's one row, whose `entity_type` / `entity_id` name one of them.
 *
 * - `audit_log_entities_idx`: a GIN index (`jsonb_path_ops`) of `changes -> 'entities'`, on the
 *   rows that have it only, that `history()` and `audit_log_erase` use to find an entity's
 *   changes on other entities' rows. Built without holding back inserts on a big table:
 *   1. `CREATE INDEX … ON ONLY audit_log` (SHARE lock on the parent only, no build: instant; the
 *      index stays invalid until every partition's is attached; new partitions get theirs when
 *      attached, empty). Every lock here is held to the migration's commit when it runs in a
 *      transaction: inserts wait for the migrations, as for any schema change.
 *   2. Each partition's `<partition>_entities_idx`: run outside a transaction
 *      (`migrationsTransactionMode: 'none'`), the migration builds it `CONCURRENTLY` (SHARE
 *      UPDATE EXCLUSIVE: inserts go on; it waits for older transactions). Inside one (TypeORM's
 *      default), it builds it plainly only for a partition of at most 64 MiB (SHARE lock:
 *      inserts into that partition wait for the build, well under a second); a bigger partition
 *      is left for the operator to build `CONCURRENTLY` under that name, before the migration
 *      (it then only attaches it) or after it (docs/RUNBOOK.md section 14).
 *   3. `ALTER INDEX audit_log_entities_idx ATTACH PARTITION …` (no build: ACCESS SHARE on the
 *      tables, SHARE UPDATE EXCLUSIVE on the parent's index, ACCESS EXCLUSIVE on the
 *      partition's: inserts into that partition wait for it, an instant by hand): once all are
 *      attached, the parent's index is valid.
 *   Rows without `changes.entities` are not in it: the insert of such a row only tests the predicate.
 * - `audit_log_erase` replaced (same signature, owner, SECURITY DEFINER, settings and grant):
 *   erasing an entity also erases the rows about other entities whose `changes.entities` holds a
 *   change of it. A row has one salt for all its values: the whole row is erased (its actor and
 *   every personal value), since keeping the salt for the other values would let the erased
 *   ones be tried against their commitments.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditEntityChanges1766600000000 implements MigrationInterface {
  name = 'AuditEntityChanges1766600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    await queryRunner.query(eraseFunction(s, true));
    await buildEntitiesIndex(queryRunner, schema);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    await queryRunner.query(eraseFunction(ident(schema), false));
    await queryRunner.query(`DROP INDEX IF EXISTS ${ident(schema)}.${INDEX}`);
  }
}

/** Builds the index on `audit_log` and on each partition, attaching those (see the class's comment). */
async function buildEntitiesIndex(queryRunner: QueryRunner, schema: string): Promise<void> {
  const s = ident(schema);
  const concurrently = !queryRunner.isTransactionActive;
  const [{ kind }] = (await queryRunner.query(
    `SELECT c.relkind AS kind FROM pg_class c WHERE c.oid = ${lit(`${s}.audit_log`)}::regclass`,
  )) as {
    kind: string;
  }[];
  if (kind !== 'p') {
    await queryRunner.query(`CREATE INDEX ${concurrently ? 'CONCURRENTLY ' : ''}IF NOT EXISTS ${INDEX} ON ${s}.audit_log ${INDEX_BODY}`);
    return;
  }
  await queryRunner.query(`CREATE INDEX IF NOT EXISTS ${INDEX} ON ONLY ${s}.audit_log ${INDEX_BODY}`);
  const parts = (await queryRunner.query(`
    SELECT c.relname AS name, pg_relation_size(c.oid) AS bytes,
      EXISTS (SELECT FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid
        WHERE i.inhparent = ${lit(`${s}.${INDEX}`)}::regclass AND x.indrelid = c.oid) AS attached
    FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
    WHERE h.inhparent = ${lit(`${s}.audit_log`)}::regclass AND c.relkind = 'r'
    ORDER BY c.relname`)) as { name: string; bytes: string; attached: boolean }[];
  const left: string[] = [];
  for (const part of parts) {
    if (part.attached) continue;
    const name = `${part.name.slice(0, 49)}_entities_idx`;
    const [own] = (await queryRunner.query(
      `SELECT x.indisvalid AS valid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
       WHERE i.relname = ${lit(name)} AND i.relnamespace = ${lit(schema)}::regnamespace`,
    )) as { valid: boolean }[];
    // An invalid one is what an interrupted CONCURRENTLY build leaves: built again.
    if (own && !own.valid) await queryRunner.query(`DROP INDEX ${concurrently ? 'CONCURRENTLY ' : ''}${s}.${ident(name)}`);
    if (!own || !own.valid) {
      if (!concurrently && Number(part.bytes) > SMALL_PARTITION_BYTES) {
        left.push(`${part.name} (${name})`);
        continue;
      }
      await queryRunner.query(
        `CREATE INDEX ${concurrently ? 'CONCURRENTLY ' : ''}${ident(name)} ON ${s}.${ident(part.name)} ${INDEX_BODY}`,
      );
    }
    await queryRunner.query(`ALTER INDEX ${s}.${INDEX} ATTACH PARTITION ${s}.${ident(name)}`);
  }
  if (left.length > 0) {
    queryRunner.connection.logger.logMigration(
      `AuditEntityChanges1766600000000: ${INDEX} is not built on ${left.join(', ')}: build each CONCURRENTLY and attach it (docs/RUNBOOK.md section 14); until then an entity's history reads those partitions whole for changes recorded on other entities' rows`,
    );
  }
}

/**
 * `audit_log_erase` as `AuditRetentionChecks1765300000000` made it, or (`byChanges`) also taking
 * the rows whose `changes.entities` holds a change of the entity erased.
 */
function eraseFunction(s: string, byChanges: boolean): string {
  const inChanges = byChanges
    ? `
               OR (by_entity_type IS NOT NULL AND l.changes ? 'entities'
                   AND (l.changes -> 'entities' @> ref_text OR l.changes -> 'entities' @> ref_number))`
    : '';
  // As JSON, `changes.entities` holds a numeric key as a number: both spellings are looked for.
  const refs = byChanges
    ? `
        ref_text := pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('type', by_entity_type, 'id', by_entity_id));
        IF by_entity_id ~ '^-?(0|[1-9][0-9]*)$' THEN
          ref_number := pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('type', by_entity_type, 'id', by_entity_id::numeric));
        END IF;`
    : '';
  return `
      CREATE OR REPLACE FUNCTION ${s}.audit_log_erase(by_user_id text, by_entity_type text, by_entity_id text, erasure uuid, dry_run boolean)
      RETURNS TABLE (id uuid, occurred_at timestamptz, state text)
      LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s'
      AS $fn$
      DECLARE
        ref_text jsonb;
        ref_number jsonb;
      BEGIN
        IF (by_user_id IS NULL) = (by_entity_type IS NULL) OR (by_entity_type IS NULL) <> (by_entity_id IS NULL) THEN
          RAISE EXCEPTION 'audit_log_erase needs a user id, or an entity type and id' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF erasure IS NULL OR dry_run IS NULL THEN
          RAISE EXCEPTION 'audit_log_erase needs an erasure id and dry_run' USING ERRCODE = 'invalid_parameter_value';
        END IF;${refs}
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
               OR (by_entity_type IS NOT NULL AND l.entity_type = by_entity_type AND l.entity_id = by_entity_id)${inChanges}
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
