import { type MigrationInterface, type QueryRunner } from 'typeorm';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** A single-quoted SQL literal. */
const lit = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** The function whose value the index holds: a row's `changes.entities` without the row's own entity. */
export const OTHER_ENTITIES_FUNCTION = 'audit_log_other_entities';

/** The index of the entities a row names besides its own, on `audit_log` (and on each partition: `<partition>_others_idx`). */
const INDEX = 'audit_log_other_entities_idx';

/** A partition at most this large gets its index built inside the migration's transaction (a build of well under a second). */
const SMALL_PARTITION_BYTES = 64 * 1024 * 1024;

/** The index's method, key, options and predicate: the same on the parent and on every partition, as ATTACH requires. */
const indexBody = (s: string) =>
  `USING gin (${s}.${OTHER_ENTITIES_FUNCTION}(changes -> 'entities', entity_type, entity_id) jsonb_path_ops) WITH (fastupdate = off) WHERE changes ? 'entities'`;

/**
 * An entity's history page bounded by the page (docs/GUIDE.md "History"). Every row about an
 * audited entity also holds that entity's change in `changes.entities`: through
 * `audit_log_entities_idx`, the lookup of an entity's changes on other entities' rows fetched each
 * of the entity's own rows from the table only to drop it, so a page of a much-changed entity read
 * its whole history.
 *
 * - `audit_log_other_entities(entities, entity_type, entity_id)`: the array `entities` without the
 *   elements whose type and id (as text: `42` and `"42"` alike) are the row's own; any value that
 *   is not an array as it is. IMMUTABLE, its calls qualified: it reads its arguments only.
 * - `audit_log_other_entities_idx`: a GIN index (`jsonb_path_ops`, `fastupdate = off`) of that
 *   value on the rows that have `changes.entities`, which `history()` reads for the entity's
 *   changes on other rows: a row's own entity is not in it, so a page reads the entity's rows off
 *   the time index and its changes on other rows only. `audit_log_entities_idx` stays (erasure
 *   reads it). Each insert of a row with `changes.entities` updates one more index.
 *   Built as `AuditEntityChanges1766600000000` built its index, without holding back inserts on a
 *   big table: `CREATE INDEX … ON ONLY audit_log` (instant), each partition's
 *   `<partition>_others_idx` built `CONCURRENTLY` when the migrations run outside a transaction
 *   (`migrationsTransactionMode: 'none'`), or inside one plainly for a partition of at most
 *   64 MiB (a bigger one is left for the operator to build `CONCURRENTLY` under that name, before
 *   or after the migration, as docs/RUNBOOK.md section 14 shows for `audit_log_entities_idx`),
 *   then `ALTER INDEX … ATTACH PARTITION` for each. Until every partition's is attached, a
 *   history page reads the partitions without one whole for changes on other rows.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditOtherEntitiesIndex1767000000000 implements MigrationInterface {
  name = 'AuditOtherEntitiesIndex1767000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.${OTHER_ENTITIES_FUNCTION}(entities jsonb, own_type text, own_id text)
      RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE
      AS $fn$
        SELECT CASE WHEN pg_catalog.jsonb_typeof(entities) = 'array' THEN (
          SELECT COALESCE(pg_catalog.jsonb_agg(e), '[]'::jsonb)
          FROM pg_catalog.jsonb_array_elements(entities) AS e
          WHERE (e OPERATOR(pg_catalog.->>) 'type', e OPERATOR(pg_catalog.->>) 'id') IS DISTINCT FROM (own_type, own_id)
        ) ELSE entities END
      $fn$`);
    await buildIndex(queryRunner, schema);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    await queryRunner.query(`DROP INDEX IF EXISTS ${s}.${INDEX}`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS ${s}.${OTHER_ENTITIES_FUNCTION}(jsonb, text, text)`);
  }
}

/** Builds the index on `audit_log` and on each partition, attaching those (see the class's comment). */
async function buildIndex(queryRunner: QueryRunner, schema: string): Promise<void> {
  const s = ident(schema);
  const body = indexBody(s);
  const concurrently = !queryRunner.isTransactionActive;
  const [{ kind }] = (await queryRunner.query(
    `SELECT c.relkind AS kind FROM pg_class c WHERE c.oid = ${lit(`${s}.audit_log`)}::regclass`,
  )) as {
    kind: string;
  }[];
  if (kind !== 'p') {
    await queryRunner.query(`CREATE INDEX ${concurrently ? 'CONCURRENTLY ' : ''}IF NOT EXISTS ${INDEX} ON ${s}.audit_log ${body}`);
    return;
  }
  await queryRunner.query(`CREATE INDEX IF NOT EXISTS ${INDEX} ON ONLY ${s}.audit_log ${body}`);
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
    const name = `${part.name.slice(0, 51)}_others_idx`;
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
      await queryRunner.query(`CREATE INDEX ${concurrently ? 'CONCURRENTLY ' : ''}${ident(name)} ON ${s}.${ident(part.name)} ${body}`);
    }
    await queryRunner.query(`ALTER INDEX ${s}.${INDEX} ATTACH PARTITION ${s}.${ident(name)}`);
  }
  if (left.length > 0) {
    queryRunner.connection.logger.logMigration(
      `AuditOtherEntitiesIndex1767000000000: ${INDEX} is not built on ${left.join(', ')}: build each CONCURRENTLY and attach it (docs/RUNBOOK.md section 14 shows how for audit_log_entities_idx); until then an entity's history reads those partitions whole for changes recorded on other entities' rows`,
    );
  }
}
