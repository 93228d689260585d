import { quoteTablePath } from '../audit-insert-sql';
import { type Query } from './month-analysis';

/**
 * How a month's rows stand against the seals, as the database found them in one read of its partition.
 *
 * @example
 * const { rows, manifest }: MonthCheck = await checkMonth(query, 'public.audit_log', '2026-01');
 */
export interface MonthCheck {
  rows: number;
  /** Rows after the newest seal's last row: not sealed yet. */
  unsealed: number;
  /** Rows inside a sealed range that its seal left out (forged, invalid or copied rows): never sealed. */
  leftOut: number;
  /** The checkpoint's manifest: per seal that sealed some of the rows, a bitmap of them. */
  manifest: Buffer;
  /** What the month holds of erasures, as the checkpoint carries it forward (JSON text). */
  erasures: string;
  /** Whether any seal exists yet. */
  sealed: boolean;
  /** The newest seal that sealed one of the rows, or null. */
  covered: { seq: number; hash: Buffer } | null;
}

/**
 * Checks `month` (`YYYY-MM`) of the audit table in the database (`audit_log_month_check`, see
 * docs/LIFECYCLE.md): each row against the manifest of the seal whose range holds it, by id and
 * leaf prefix, in one read of the partition, which stays locked (SHARE) until the transaction ends.
 * `audit_log_retire_month`, called later in the same transaction, reuses what it found. Run it
 * inside a transaction with `search_path` pinned.
 *
 * @example
 * const check = await checkMonth(query, 'public.audit_log', '2026-01');
 * check.unsealed + check.leftOut; // 0 when the month is wholly sealed
 */
export async function checkMonth(query: Query, table: string, month: string): Promise<MonthCheck> {
  const schema = table.slice(0, table.lastIndexOf('.'));
  const [row] = await query(
    `SELECT c.rows::text AS rows, c.unsealed::text AS unsealed, c.left_out::text AS left_out, c.manifest, c.erasures,
       c.newest IS NOT NULL AS sealed, c.covered::text AS covered, c.covered_hash
     FROM ${quoteTablePath(schema)}.audit_log_month_check($1::date) AS c`,
    [`${month}-01`],
  );
  return {
    rows: Number(row.rows),
    unsealed: Number(row.unsealed),
    leftOut: Number(row.left_out),
    manifest: row.manifest as Buffer,
    erasures: row.erasures as string,
    sealed: row.sealed as boolean,
    covered: row.covered === null ? null : { seq: Number(row.covered), hash: row.covered_hash as Buffer },
  };
}
