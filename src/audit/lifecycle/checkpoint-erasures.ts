import { quoteTablePath } from '../audit-insert-sql';
import { type Query } from './month-analysis';
import { monthStart } from './month-partitions';

/**
 * What a retention checkpoint carries forward of the erasures of the month it removes
 * (docs/LIFECYCLE.md, docs/PRIVACY.md), as `audit_seal.retention_erasures` stores it (JSON text):
 * per erasure id, how many of the month's rows were erased under it (`erased`), and the
 * `audit_erasure` entries the month held (`entries`: the count of rows each says it erased, summed
 * when one erasure has several, and the subject's pseudonym). The checkpoint's hash covers the
 * text; `audit_log_retire_month` checks that it says exactly what the partition holds.
 *
 * @example
 * const carried: RetainedErasures = JSON.parse(checkpoint.retention?.erasures ?? '{"erased":{},"entries":{}}');
 */
export interface RetainedErasures {
  erased: Record<string, number>;
  entries: Record<string, { rows: number; subject: string | null }>;
}

/**
 * The SQL that states a month's erasures as {@link RetainedErasures} (a `jsonb` value), over the
 * rows of `rows` (a relation with alias `l`, and its filter). `audit_log_retire_month` runs the
 * same statement over the partition: an erased row is one whose `personal` is exactly the marker
 * `audit_log_erase` writes; an entry's count is its `rows` when that is a whole number, else 0.
 *
 * @example
 * const sql = `SELECT (${erasuresSql('audit_log AS l WHERE l.occurred_at >= $1 AND l.occurred_at < $2')})::text AS carried`;
 */
export function erasuresSql(rows: string): string {
  return `pg_catalog.jsonb_build_object(
    'erased', COALESCE((SELECT pg_catalog.jsonb_object_agg(x.e, x.n) FROM (
        SELECT pg_catalog.substring(l.personal, '^\\{"erased":"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"\\}$') AS e, pg_catalog.count(*) AS n
        FROM ${rows} AND l.personal LIKE '{"erased":%' GROUP BY 1) AS x WHERE x.e IS NOT NULL), '{}'::jsonb),
    'entries', COALESCE((SELECT pg_catalog.jsonb_object_agg(y.e, pg_catalog.jsonb_build_object('rows', y.n, 'subject', y.subject)) FROM (
        SELECT l.changes -> 'erasure' ->> 'id' AS e,
          pg_catalog.sum(CASE WHEN (l.changes -> 'erasure' ->> 'rows') ~ '^[0-9]{1,15}$' THEN (l.changes -> 'erasure' ->> 'rows')::bigint ELSE 0 END) AS n,
          pg_catalog.min(l.changes -> 'erasure' ->> 'subject') AS subject
        FROM ${rows} AND l.action OPERATOR(pg_catalog.=) 'audit_erasure' GROUP BY 1) AS y WHERE y.e IS NOT NULL), '{}'::jsonb))`;
}

/**
 * The erasures of `month` (`YYYY-MM`) of the audit table, as a checkpoint of that month carries
 * them forward: the JSON text to store in `retention_erasures` (and to cover by its hash).
 *
 * @example
 * const carried = await retentionErasures(query, 'public.audit_log', '2026-01');
 */
export async function retentionErasures(query: Query, table: string, month: string): Promise<string> {
  const rows = `${quoteTablePath(table)} AS l WHERE l.occurred_at >= $1::timestamptz AND l.occurred_at < $2::timestamptz`;
  const from = new Date(monthStart(month)).toISOString();
  const to = new Date(monthStart(month, 1)).toISOString();
  const [{ carried }] = await query(`SELECT (${erasuresSql(rows)})::text AS carried`, [from, to]);
  return carried as string;
}
