import { quoteTablePath } from '../audit-insert-sql';
import { type SortKey } from '../integrity/row-encoding';
import { decodeRetained, type RetainedRows } from './checkpoint';
import { monthCheckSql } from './month-check-sql';
import { type CheckFunction, checkMonthInParts, type PartBounds } from './month-chunks';

/** One statement: its rows. Adapts a `pg` client, a TypeORM query runner or the sealer's session. */
export type Query = (sql: string, parameters?: unknown[]) => Promise<Record<string, unknown>[]>;

/** A seal's place in the chain, without its manifest. */
export interface SealHead {
  seq: number;
  last: SortKey;
  rowCount: number;
  hash: Buffer;
  /** A retention checkpoint: it seals no row. */
  checkpoint: boolean;
  /** When it was made (ms since the epoch, as the sealer's clock said). */
  sealedAt: number;
}

/** How a month's rows stand against the seals. */
export interface MonthAnalysis {
  rows: number;
  /** Rows after the newest seal's last row: not sealed yet. */
  unsealed: number;
  /** Rows inside a sealed range that its seal left out (forged or invalid rows): never sealed. */
  leftOut: number;
  /** The rows, by the seals that sealed them (the checkpoint's manifest). */
  retained: RetainedRows;
  /** The newest seal that sealed one of the rows, or null. */
  covered: { seq: number; hash: Buffer } | null;
}

/**
 * Every seal's place in the chain, in seq order. Run it with `search_path` pinned.
 *
 * @example
 * const heads = await sealHeads(query, 'public.audit_seal');
 */
export async function sealHeads(query: Query, sealTable: string): Promise<SealHead[]> {
  const rows = await query(
    `SELECT s.seq::text AS seq, s.last_tx::text AS last_tx, s.last_id::text AS last_id, s.row_count, s.hash,
       s.retention_month IS NOT NULL AS checkpoint, (pg_catalog.date_part('epoch', s.sealed_at) * 1000)::float8 AS sealed_at
       FROM ${sealTable} AS s ORDER BY s.seq`,
  );
  return rows.map((row) => ({
    seq: Number(row.seq),
    last: { tx: row.last_tx === null ? null : BigInt(row.last_tx as string), id: row.last_id as string },
    rowCount: Number(row.row_count),
    hash: row.hash as Buffer,
    checkpoint: row.checkpoint as boolean,
    sealedAt: Number(row.sealed_at),
  }));
}

/**
 * Checks the month's rows (`from` inclusive to `to` exclusive, by `occurred_at`: PostgreSQL reads
 * only that month's partition) against the seals in the database, in one statement that sends no
 * row out ({@link monthCheckSql}, the statement `audit_log_retire_month` runs too): each row is
 * matched to the manifest entry of its id and leaf prefix in the seal whose range holds it, one row
 * per entry (a copied or changed row is left out).
 *
 * @example
 * const analysis = await analyzeMonth(query, 'public.audit_log', 'public.audit_seal', heads, '2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z');
 * analysis.unsealed + analysis.leftOut; // 0 when the month is wholly sealed
 */
export async function analyzeMonth(
  query: Query,
  table: string,
  sealTable: string,
  heads: readonly SealHead[],
  from: string,
  to: string,
): Promise<MonthAnalysis> {
  const [check] = await query(
    monthCheckSql(quoteTablePath(table), sealTable, 'l.occurred_at >= $1::timestamptz AND l.occurred_at < $2::timestamptz'),
    [from, to],
  );
  return analysisOf(check, heads);
}

/**
 * The month checked by the database's `audit_log_check_month()` (migration
 * `AuditRetireByLeaf1766100000000`), in the caller's transaction: it locks the month's partition
 * against inserts (SHARE) until the transaction ends, checks it as {@link analyzeMonth} does, states
 * its erasures, and keeps the result for `audit_log_retire_month()` of the same transaction, which
 * then reads the month no more. With `bounds`, the month is checked in parts first
 * (`checkMonthInParts`, each part a statement within `bounds.timeoutMs`), which the function then
 * adds up. With `check` `audit_log_check_legacy` (`month`: the legacy bound), the same for the
 * legacy partition and `audit_log_retire_legacy()`. Null when the function is not there or not
 * granted: check with {@link analyzeMonth} then.
 *
 * @example
 * const checked = await checkMonthLocked(query, 'public.audit_log', heads, '2026-01');
 * checked?.erasures; // '{"erased": {}, "entries": {}}'
 */
export async function checkMonthLocked(
  query: Query,
  table: string,
  heads: readonly SealHead[],
  month: string,
  bounds?: PartBounds,
  check: CheckFunction = 'audit_log_check_month',
): Promise<{ analysis: MonthAnalysis; erasures: string } | null> {
  const schema = quoteTablePath(table.slice(0, table.lastIndexOf('.')));
  const [{ usable }] = await query(
    `SELECT pg_catalog.has_function_privilege(pg_catalog.to_regprocedure($1), 'EXECUTE') IS TRUE AS usable`,
    [`${schema}.${check}(date)`],
  );
  if (!usable) return null;
  // In parts first, each within the statement timeout, where the database offers it (then the function below only adds them up),
  // unless the month's seals recorded its rows: the function then reads none of them.
  if (bounds && !(check === 'audit_log_check_month' && (await monthRecorded(query, schema, month)))) {
    await checkMonthInParts(query, table, heads, month, bounds, check);
  }
  const [checked] = await query(`SELECT k.* FROM ${schema}.${check}($1::date) AS k`, [`${month}-01`]);
  return { analysis: analysisOf(checked, heads), erasures: checked.erasures as string };
}

/**
 * Whether every seal recorded what it sealed of each month (`audit_log_month_recorded`, migration
 * `AuditSealMonths1766800000000`): `audit_log_check_month` then answers from those records and two
 * probes, reading no other row of the month. False before the migration or without its grant.
 */
async function monthRecorded(query: Query, schema: string, month: string): Promise<boolean> {
  const [{ usable }] = await query(
    `SELECT pg_catalog.has_function_privilege(pg_catalog.to_regprocedure($1), 'EXECUTE') IS TRUE AS usable`,
    [`${schema}.audit_log_month_recorded(date)`],
  );
  if (!usable) return false;
  const [{ recorded }] = await query(`SELECT ${schema}.audit_log_month_recorded($1::date) AS recorded`, [`${month}-01`]);
  return recorded === true;
}

/** A row of the month's check as a {@link MonthAnalysis}. */
function analysisOf(check: Record<string, unknown>, heads: readonly SealHead[]): MonthAnalysis {
  const covered = check.covered === null ? undefined : heads.find((h) => h.seq === Number(check.covered));
  return {
    rows: Number(check.n),
    unsealed: Number(check.unsealed),
    leftOut: Number(check.left_out),
    retained: decodeRetained(check.marked as Buffer),
    covered: covered ? { seq: covered.seq, hash: covered.hash } : null,
  };
}
