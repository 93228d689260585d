import { type MigrationInterface, type QueryRunner } from 'typeorm';
import { OTHER_ENTITIES_FUNCTION } from './1767000000000-AuditOtherEntitiesIndex';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * `audit_log_other_entities` whatever the search_path of the session that inserts a row. The
 * function `AuditOtherEntitiesIndex1767000000000` made is the expression of
 * `audit_log_other_entities_idx`, so it runs in every insert, in the inserting session; two of its
 * operators (the `=` of `jsonb_typeof(…) = 'array'` and the one a row `IS DISTINCT FROM` looks up)
 * and its `jsonb` cast were found through that session's search_path. A role with a schema of its
 * own may put an `=` for text there and set its own search_path (`ALTER ROLE … SET`): the rows it
 * inserted were then indexed with no other entities, and an entity's history left them out.
 *
 * Replaced (same signature, result and owner): every operator and type in the body is
 * `pg_catalog`'s, named so; the row comparison is written per column with its NULLs handled as
 * `IS DISTINCT FROM` handles them. No `SET search_path` on the function: that would cost a
 * setting's save and restore in every insert. Index entries made before keep their value, which
 * is the same unless a role had such an operator on its search_path: then rebuild the index
 * (docs/RUNBOOK.md section 14).
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditOtherEntitiesQualified1767100000000 implements MigrationInterface {
  name = 'AuditOtherEntitiesQualified1767100000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const s = ident(await schemaOf(queryRunner));
    // Equal as `IS NOT DISTINCT FROM` compares: both NULL, or both set and equal.
    const same = (a: string, b: string) => `COALESCE(${a} OPERATOR(pg_catalog.=) ${b}, ${a} IS NULL AND ${b} IS NULL)`;
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.${OTHER_ENTITIES_FUNCTION}(entities jsonb, own_type text, own_id text)
      RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE
      AS $fn$
        SELECT CASE WHEN pg_catalog.jsonb_typeof(entities) OPERATOR(pg_catalog.=) 'array' THEN (
          SELECT COALESCE(pg_catalog.jsonb_agg(e), '[]'::pg_catalog.jsonb)
          FROM pg_catalog.jsonb_array_elements(entities) AS e
          WHERE NOT (${same(`(e OPERATOR(pg_catalog.->>) 'type')`, 'own_type')} AND ${same(`(e OPERATOR(pg_catalog.->>) 'id')`, 'own_id')})
        ) ELSE entities END
      $fn$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const s = ident(await schemaOf(queryRunner));
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
  }
}

async function schemaOf(queryRunner: QueryRunner): Promise<string> {
  const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
  return schema;
}
