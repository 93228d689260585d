import { quoteTablePath } from '../audit-insert-sql';
import { type Query } from './month-analysis';

/** The partitions of `audit_log`, as retention and the verifier see them. */
export interface PartitionLayout {
  /** Whether `audit_log` is a partitioned table at all. */
  partitioned: boolean;
  /** Monthly partitions, oldest first: `month` is `YYYY-MM` (UTC). */
  months: { name: string; month: string }[];
  /** Where the legacy partition (`FROM (MINVALUE)`) ends, `YYYY-MM` of its bound, or null without one. */
  legacyUntil: string | null;
  /** Partitions that are neither monthly, legacy nor default (made by hand): never touched. */
  others: string[];
  hasDefault: boolean;
}

/**
 * `YYYY-MM` of an instant (UTC).
 *
 * @example
 * monthOf(Date.UTC(2026, 0, 1)); // '2026-01'
 */
export function monthOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
}

/**
 * The first instant (UTC) of a month `YYYY-MM`, `plus` months later, in ms. The years 0001 to
 * 0099 are those years (`Date.UTC` would read them as 1900 to 1999).
 *
 * @example
 * new Date(monthStart('2026-12', 1)).toISOString(); // '2027-01-01T00:00:00.000Z'
 * new Date(monthStart('0050-03')).toISOString(); // '0050-03-01T00:00:00.000Z'
 */
export function monthStart(month: string, plus = 0): number {
  const start = new Date(0);
  start.setUTCFullYear(Number(month.slice(0, 4)), Number(month.slice(5, 7)) - 1 + plus, 1);
  return start.getTime();
}

/**
 * Reads the partitions of the audit table from the catalog (the bounds cast back by the server,
 * whatever the session's time zone and date style). Run it with `search_path` pinned.
 *
 * @example
 * const { months, legacyUntil } = await partitionLayout(query, 'public.audit_log');
 */
export async function partitionLayout(query: Query, table: string): Promise<PartitionLayout> {
  const relation = quoteTablePath(table);
  const [{ kind }] = (await query(
    `SELECT c.relkind::text AS kind FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass`,
    [relation],
  )) as { kind: string }[];
  const layout: PartitionLayout = { partitioned: kind === 'p', months: [], legacyUntil: null, others: [], hasDefault: false };
  if (!layout.partitioned) return layout;
  const rows = await query(
    `SELECT p.name, p.bound OPERATOR(pg_catalog.=) 'DEFAULT' AS is_default,
       CASE WHEN p.r[1] OPERATOR(pg_catalog.<>) 'MINVALUE' THEN (pg_catalog.date_part('epoch', p.r[1]::pg_catalog.timestamptz) OPERATOR(pg_catalog.*) 1000)::pg_catalog.float8 END AS lo,
       CASE WHEN p.r[2] OPERATOR(pg_catalog.<>) 'MAXVALUE' THEN (pg_catalog.date_part('epoch', p.r[2]::pg_catalog.timestamptz) OPERATOR(pg_catalog.*) 1000)::pg_catalog.float8 END AS hi
     FROM (SELECT c.relname::text AS name, pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound,
             pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''?([^'')]*)''?\\) TO \\(''?([^'')]*)''?\\)') AS r
           FROM pg_catalog.pg_inherits AS h JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) h.inhrelid
           WHERE h.inhparent OPERATOR(pg_catalog.=) $1::pg_catalog.regclass) AS p
     ORDER BY lo NULLS FIRST, p.name`,
    [relation],
  );
  for (const row of rows) {
    const lo = row.lo === null ? null : Number(row.lo);
    const hi = row.hi === null ? null : Number(row.hi);
    if (row.is_default) layout.hasDefault = true;
    else if (lo === null && hi !== null) layout.legacyUntil = monthOf(hi);
    else if (lo !== null && hi !== null && lo === monthStart(monthOf(lo)) && hi === monthStart(monthOf(lo), 1)) {
      layout.months.push({ name: row.name as string, month: monthOf(lo) });
    } else layout.others.push(row.name as string);
  }
  return layout;
}
