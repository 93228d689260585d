import { quoteTablePath } from '../audit-insert-sql';

/**
 * The `search_path` of every statement the sealer and the verifier run: only the system catalog,
 * then the session's own temporary schema (last, so that no temporary table can stand in for
 * ours). A role whose own `search_path` leads to a schema of shadow tables, functions or
 * operators (`||`) changes nothing: the tables are named with their schema, and every function,
 * operator and type resolves in `pg_catalog`.
 *
 * @example
 * await client.query(`BEGIN; ${PIN_SEARCH_PATH_SQL}`);
 */
export const PIN_SEARCH_PATH_SQL = 'SET LOCAL search_path = pg_catalog, pg_temp';

/**
 * The audit table named with its schema, for the verifier: a name without one is in `public`
 * (never resolved through the role's `search_path`).
 *
 * @example
 * qualifiedTable('audit_log'); // 'public.audit_log'
 */
export function qualifiedTable(path: string): string {
  return path.includes('.') ? path : `public.${path}`;
}

/**
 * The audit table named with its schema, for the sealer: resolved once, as the module's own
 * inserts resolve it (through the session's `search_path`), with every name in the statement
 * schema-qualified. Throws when there is no such table.
 *
 * @example
 * const table = await resolveTable((sql, params) => runner.query(sql, params), 'audit_log'); // 'public.audit_log'
 */
export async function resolveTable(query: (sql: string, parameters: unknown[]) => Promise<unknown>, path: string): Promise<string> {
  const [row] = (await query(
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_catalog.pg_class AS c
     JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)`,
    [quoteTablePath(path)],
  )) as { schema: string; name: string }[];
  if (!row) throw new Error(`relation "${path}" does not exist`);
  return `${row.schema}.${row.name}`;
}
