import { type MigrationInterface, type QueryRunner } from 'typeorm';
import { OTHER_ENTITIES_FUNCTION } from './1767000000000-AuditOtherEntitiesIndex';
import { AuditOtherEntitiesQualified1767100000000 } from './1767100000000-AuditOtherEntitiesQualified';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** A single-quoted SQL literal. */
const lit = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** The function whose value the history page's index holds: the type and id of each entity a row names besides its own. */
export const OTHER_ENTITY_REFS_FUNCTION = 'audit_log_other_entity_refs';

/** The history page's index of the other entities' type and id, on `audit_log` (and on each partition: `<partition>_refs_idx`). */
export const OTHER_ENTITY_REFS_INDEX = 'audit_log_other_entity_refs_idx';

/** The index this migration replaces (`AuditOtherEntitiesIndex1767000000000`), and its partitions' suffix. */
const OLD_INDEX = 'audit_log_other_entities_idx';

/** A partition at most this large gets its index built inside the migration's transaction (a build of well under a second). */
const SMALL_PARTITION_BYTES = 64 * 1024 * 1024;

/** A partitioned GIN index of the trail as {@link buildTrailIndex} builds it. */
export interface TrailIndex {
  /** The index on `audit_log`. */
  name: string;
  /** Each partition's index is `<partition>` (its first 51 characters) followed by this. */
  suffix: string;
  /** Method, key, options and predicate (the same on the parent and on every partition, as ATTACH requires), in schema `s` (quoted). */
  body: (s: string) => string;
  /** Who logs the partitions left unbuilt (the migration's name). */
  by: string;
}

/** The new index: the other entities' type and id, GIN `jsonb_path_ops`, no pending list, the rows with `changes.entities` only. */
const REFS: TrailIndex = {
  name: OTHER_ENTITY_REFS_INDEX,
  suffix: '_refs_idx',
  body: (s) =>
    `USING gin (${s}.${OTHER_ENTITY_REFS_FUNCTION}(changes -> 'entities', entity_type, entity_id) jsonb_path_ops) WITH (fastupdate = off) WHERE changes ? 'entities'`,
  by: 'AuditOtherEntityRefs1767200000000',
};

/** The index `AuditOtherEntitiesIndex1767000000000` made, as `down()` makes it again. */
const OTHERS: TrailIndex = {
  name: OLD_INDEX,
  suffix: '_others_idx',
  body: (s) =>
    `USING gin (${s}.${OTHER_ENTITIES_FUNCTION}(changes -> 'entities', entity_type, entity_id) jsonb_path_ops) WITH (fastupdate = off) WHERE changes ? 'entities'`,
  by: 'AuditOtherEntityRefs1767200000000 (down)',
};

/**
 * The history page's index narrowed to what the page asks of it (docs/GUIDE.md "History across
 * entities"). `audit_log_other_entities_idx` (`AuditOtherEntitiesIndex1767000000000`) held each
 * row's other entities whole: with `jsonb_path_ops`, every path to every scalar, so for a row that
 * names three contacts created with five fields each, 23 keys, each inserted into the index with
 * a WAL record of its own (about +3 600 bytes of WAL an entry, 0.70 of `log()`'s rate without
 * the index on fresh tables, 0.45 to 0.54 on tables of 200 000 rows: docs/PERFORMANCE.md). A
 * history page asks it only for `[{"type": …, "id": …}]`.
 *
 * - `audit_log_other_entity_refs(entities, entity_type, entity_id)`: `[{"type": …, "id": …}, …]`,
 *   the type and id of each element of the array `entities` whose type and id (as text: `42` and
 *   `"42"` alike) are not the row's own, each as the element stores it (a number stays a number, a
 *   string a string: the history page asks for both forms of a numeric id); `[]` for a value that
 *   is not an array. IMMUTABLE, every operator and type named as `pg_catalog`'s (the function
 *   runs in every insert, in the inserting session: see `AuditOtherEntitiesQualified1767100000000`).
 * - `audit_log_other_entity_refs_idx`: a GIN index (`jsonb_path_ops`, `fastupdate = off`) of that
 *   value on the rows with `changes.entities`, which `history()` reads: a row of three contacts
 *   gives it 4 keys (the type once, three ids). Built as `AuditOtherEntitiesIndex1767000000000`
 *   built its own: `CREATE INDEX … ON ONLY audit_log` (instant), each partition's
 *   `<partition>_refs_idx` built `CONCURRENTLY` when the migrations run outside a transaction
 *   (`migrationsTransactionMode: 'none'`), or plainly inside one for a partition of at most 64 MiB
 *   (a bigger one is left for the operator to build `CONCURRENTLY` under that name and attach, as
 *   docs/RUNBOOK.md section 14 shows; the migration logs which), an invalid one left by an
 *   interrupted `CONCURRENTLY` build built again, then `ALTER INDEX … ATTACH PARTITION` for each.
 * - Then `audit_log_other_entities_idx` is dropped (with its partitions' indexes; `DROP INDEX` of a
 *   partitioned index takes `audit_log`'s lock for the moment the catalog change takes), and the
 *   function `audit_log_other_entities` too unless something else was made on it (then it stays,
 *   and the migration logs that). Until every partition's new index is attached, a history page
 *   reads the partitions without one whole for changes on other rows.
 *
 * `down()` makes the old function and index again, as `AuditOtherEntitiesQualified1767100000000`
 * left them (built the same way, partition by partition), then drops the new ones.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditOtherEntityRefs1767200000000 implements MigrationInterface {
  name = 'AuditOtherEntityRefs1767200000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const schema = await schemaOf(queryRunner);
    const s = ident(schema);
    // Equal as `IS NOT DISTINCT FROM` compares: both NULL, or both set and equal.
    const same = (a: string, b: string) => `COALESCE(${a} OPERATOR(pg_catalog.=) ${b}, ${a} IS NULL AND ${b} IS NULL)`;
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.${OTHER_ENTITY_REFS_FUNCTION}(entities jsonb, own_type text, own_id text)
      RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE
      AS $fn$
        SELECT CASE WHEN pg_catalog.jsonb_typeof(entities) OPERATOR(pg_catalog.=) 'array' THEN (
          SELECT COALESCE(
            pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('type', e OPERATOR(pg_catalog.->) 'type', 'id', e OPERATOR(pg_catalog.->) 'id')),
            '[]'::pg_catalog.jsonb)
          FROM pg_catalog.jsonb_array_elements(entities) AS e
          WHERE NOT (${same(`(e OPERATOR(pg_catalog.->>) 'type')`, 'own_type')} AND ${same(`(e OPERATOR(pg_catalog.->>) 'id')`, 'own_id')})
        ) ELSE '[]'::pg_catalog.jsonb END
      $fn$`);
    await buildTrailIndex(queryRunner, schema, REFS);
    await queryRunner.query(`DROP INDEX IF EXISTS ${s}.${OLD_INDEX}`);
    await dropFunctionUnlessUsed(queryRunner, schema, OTHER_ENTITIES_FUNCTION, this.name);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const schema = await schemaOf(queryRunner);
    const s = ident(schema);
    await new AuditOtherEntitiesQualified1767100000000().up(queryRunner);
    await buildTrailIndex(queryRunner, schema, OTHERS);
    await queryRunner.query(`DROP INDEX IF EXISTS ${s}.${OTHER_ENTITY_REFS_INDEX}`);
    await dropFunctionUnlessUsed(queryRunner, schema, OTHER_ENTITY_REFS_FUNCTION, `${this.name} (down)`);
  }
}

async function schemaOf(queryRunner: QueryRunner): Promise<string> {
  const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
  return schema;
}

/** Drops `schema.name(jsonb, text, text)` unless an object depends on it; logs that it stays if one does. */
async function dropFunctionUnlessUsed(queryRunner: QueryRunner, schema: string, name: string, by: string): Promise<void> {
  const fn = `${ident(schema)}.${ident(name)}(jsonb, text, text)`;
  const [{ used }] = (await queryRunner.query(
    `SELECT to_regprocedure(${lit(fn)}) IS NOT NULL AND EXISTS (
       SELECT FROM pg_depend d WHERE d.refclassid = 'pg_proc'::regclass AND d.refobjid = to_regprocedure(${lit(fn)})
         AND d.deptype = 'n') AS used`,
  )) as { used: boolean }[];
  if (used) {
    queryRunner.connection.logger.logMigration(
      `${by}: ${schema}.${name} is kept: something made on it depends on it (pg_depend); drop it once that is gone`,
    );
    return;
  }
  await queryRunner.query(`DROP FUNCTION IF EXISTS ${fn}`);
}

/**
 * Builds `index` on `audit_log` and on each of its partitions, attaching those: `ON ONLY` the
 * parent, each partition's `CONCURRENTLY` outside a transaction or plainly inside one when it is
 * at most 64 MiB (a bigger one left and logged), an invalid leftover of an interrupted build
 * built again, one built beforehand under its name attached as it is. On a table that is not
 * partitioned, one index (`CONCURRENTLY` outside a transaction).
 */
async function buildTrailIndex(queryRunner: QueryRunner, schema: string, index: TrailIndex): Promise<void> {
  const s = ident(schema);
  const body = index.body(s);
  const concurrently = !queryRunner.isTransactionActive;
  const [{ kind }] = (await queryRunner.query(
    `SELECT c.relkind AS kind FROM pg_class c WHERE c.oid = ${lit(`${s}.audit_log`)}::regclass`,
  )) as { kind: string }[];
  if (kind !== 'p') {
    await queryRunner.query(`CREATE INDEX ${concurrently ? 'CONCURRENTLY ' : ''}IF NOT EXISTS ${index.name} ON ${s}.audit_log ${body}`);
    return;
  }
  await queryRunner.query(`CREATE INDEX IF NOT EXISTS ${index.name} ON ONLY ${s}.audit_log ${body}`);
  const parts = (await queryRunner.query(`
    SELECT c.relname AS name, pg_relation_size(c.oid) AS bytes,
      EXISTS (SELECT FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid
        WHERE i.inhparent = ${lit(`${s}.${index.name}`)}::regclass AND x.indrelid = c.oid) AS attached
    FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
    WHERE h.inhparent = ${lit(`${s}.audit_log`)}::regclass AND c.relkind = 'r'
    ORDER BY c.relname`)) as { name: string; bytes: string; attached: boolean }[];
  const left: string[] = [];
  for (const part of parts) {
    if (part.attached) continue;
    const name = `${part.name.slice(0, 51)}${index.suffix}`;
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
    await queryRunner.query(`ALTER INDEX ${s}.${index.name} ATTACH PARTITION ${s}.${ident(name)}`);
  }
  if (left.length > 0) {
    queryRunner.connection.logger.logMigration(
      `${index.by}: ${index.name} is not built on ${left.join(', ')}: build each CONCURRENTLY and attach it (docs/RUNBOOK.md section 14); until then an entity's history reads those partitions whole for changes recorded on other entities' rows`,
    );
  }
}
