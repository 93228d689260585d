import { monthOf, monthStart } from './month-partitions';

/** How the month of the legacy partition's retention checkpoint begins: `legacy..` and the last month its range held. */
export const LEGACY_MARK_PREFIX = 'legacy..';

/**
 * The month a retention checkpoint of the legacy partition records (`RetentionMark.month`): every
 * row dated before the first of `bound` (`YYYY-MM`, the partition's bound), written
 * `legacy..<the month before bound>`. `audit_seal.retention_month` holds the last day before the
 * bound (a month's checkpoint holds a first day), and the checkpoint's hash covers the text.
 *
 * @example
 * legacyMark('2026-12'); // 'legacy..2026-11'
 */
export function legacyMark(bound: string): string {
  return `${LEGACY_MARK_PREFIX}${monthOf(monthStart(bound, -1))}`;
}

/**
 * The bound (`YYYY-MM`) of the legacy range a checkpoint's month names, or null for a month.
 *
 * @example
 * legacyBoundOf('legacy..2026-11'); // '2026-12'
 * legacyBoundOf('2026-11'); // null
 */
export function legacyBoundOf(month: string): string | null {
  const match = /^legacy\.\.(\d{4}-\d{2})$/.exec(month);
  return match ? monthOf(monthStart(match[1], 1)) : null;
}

/** A month an archive or a checkpoint may name: `YYYY-MM`, or the legacy range `legacy..YYYY-MM`. */
export const MONTH_OR_LEGACY_PATTERN = /^(legacy\.\.)?\d{4}-(0[1-9]|1[0-2])$/;

/**
 * The instants (ms since the epoch, `from` inclusive, `to` exclusive) a month covers, or the
 * legacy range (`from` -Infinity: every row before its bound).
 *
 * @example
 * monthSpan('2026-01'); // { from: 1767225600000, to: 1769904000000 }
 * monthSpan('legacy..2026-11').from; // -Infinity
 */
export function monthSpan(month: string): { from: number; to: number } {
  const bound = legacyBoundOf(month);
  return bound === null ? { from: monthStart(month), to: monthStart(month, 1) } : { from: -Infinity, to: monthStart(bound) };
}

/**
 * SQL reading a `retention_month` column as the checkpoint's month: `YYYY-MM` for a month's
 * checkpoint (a first day), `legacy..YYYY-MM` for the legacy partition's (the last day before its bound).
 *
 * @example
 * const sql = `SELECT ${retentionMonthSql('s.retention_month')} AS month FROM audit_seal AS s WHERE s.retention_month IS NOT NULL`;
 */
export function retentionMonthSql(column: string): string {
  return `pg_catalog.to_char(${column}, CASE WHEN pg_catalog.date_part('day', ${column}) OPERATOR(pg_catalog.=) 1 THEN 'YYYY-MM' ELSE '"${LEGACY_MARK_PREFIX}"YYYY-MM' END)`;
}
