/** The first and last instants a row's timestamps may hold (the range the migration's constraints enforce). */
const FIRST = `'0001-01-01 00:00:00+00'::pg_catalog.timestamptz`;
const LAST = `'9999-12-31 23:59:59.999999+00'::pg_catalog.timestamptz`;

const outOfRange = (column: string) =>
  `WHEN NOT (l.${column} BETWEEN ${FIRST} AND ${LAST}) THEN 'its ${column} (' || l.${column}::text || ') is not a time in the years 1 to 9999'`;

/** Transaction ids below this are PostgreSQL's own (invalid, bootstrap, frozen): no row was inserted by one. */
const FIRST_NORMAL_XID = 3;

/**
 * Why a row of `audit_log` (aliased `l`) cannot be sealed, as text, or NULL when it can: a
 * timestamp that is not finite or lies outside the years 1 to 9999, or a `tx` that is no
 * transaction's id, stored before the migration `AuditDatabaseColumns1764800000020` (or by a
 * superuser with the triggers off). The sealer skips such rows and goes on; `audit-verify` names
 * each one (`row_invalid`).
 *
 * @example
 * const rows = await runner.query(`SELECT id, ${ROW_PROBLEM_SQL} AS problem FROM audit_log AS l`);
 */
export const ROW_PROBLEM_SQL = `CASE ${outOfRange('occurred_at')} ${outOfRange('recorded_at')}
  WHEN l.tx < ${FIRST_NORMAL_XID} THEN 'its tx (' || l.tx::text || ') is no transaction''s id' END`;

/**
 * SQL true for a row (aliased `l`) the sealer may seal: {@link ROW_PROBLEM_SQL} finds nothing.
 *
 * @example
 * const where = `tx < h.horizon AND ${SEALABLE_ROW_SQL}`;
 */
export const SEALABLE_ROW_SQL = `l.occurred_at BETWEEN ${FIRST} AND ${LAST} AND l.recorded_at BETWEEN ${FIRST} AND ${LAST} AND (l.tx IS NULL OR l.tx >= ${FIRST_NORMAL_XID})`;
