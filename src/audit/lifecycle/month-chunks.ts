import { quoteTablePath } from '../audit-insert-sql';
import { mergeRetained, type RetainedRows } from './checkpoint';
import { type MonthAnalysis, type Query, type SealHead } from './month-analysis';
import { monthChunkSql } from './month-check-sql';

/** SQLSTATE query_canceled: the statement ran past `statement_timeout`. */
const QUERY_CANCELED = '57014';

/** A sealing key `(COALESCE(tx, -1), id)` before every row's (a part "after" it begins at the first row). */
export const FIRST_KEY = ['-2', '00000000-0000-0000-0000-000000000000'] as const;

/** A sealing key after every row's (a part "up to" it ends at the last row). */
export const LAST_KEY = ['9223372036854775807', 'ffffffff-ffff-ffff-ffff-ffffffffffff'] as const;

/**
 * The rows (alias `l`) whose sealing key `(COALESCE(tx, -1), id)` lies after `($1, $2)` and up to
 * `($3, $4)`; the conditions on `tx` alone let the BRIN index on `tx` skip the blocks of other keys.
 */
export const PART_ROWS = `(COALESCE(l.tx, -1), l.id) > ($1::bigint, $2::uuid) AND (COALESCE(l.tx, -1), l.id) <= ($3::bigint, $4::uuid)
            AND (l.tx >= $1::bigint OR $1::bigint < 0) AND (l.tx <= $3::bigint OR l.tx IS NULL)`;

/** How the parts of a month's check are sized: each statement within `timeoutMs` (retention's statement timeout). */
export interface PartBounds {
  timeoutMs: number;
  /** The seals whose rows the first part takes (default 1); later parts grow or shrink with the time each took. */
  firstSeals?: number;
  /**
   * The month's first instant (ms): the seals made before it go into one first part (they hold
   * few of the month's rows, if any), and parts of `firstSeals` begin after them.
   */
  monthStart?: number;
  now?: () => number;
}

/** A key of the sealing order, as the parts' bounds take it: `[tx, id]`. */
type Key = readonly [string, string];

/**
 * Runs `check(after, upto)` over the sealing order in parts that follow each other: from the first
 * key to the last row of a seal, from there to the last row of a later seal, …, and from the newest
 * seal's last row to the last key (rows not sealed yet). Each part is a statement of its own under
 * a savepoint and takes the rows of whole seals, so that each manifest is read once. A part cut by
 * the statement timeout (57014) is rolled back to its savepoint and tried again with a quarter of
 * its seals (a part of one seal cut a third time running is thrown: `maxRowsPerSeal` bounds a
 * part). A part taken in
 * under an eighth of `timeoutMs` doubles the next one's seals; one over a third halves them. With
 * `monthStart`, the seals made before the month began are the first part, whole.
 *
 * @example
 * await inParts(query, heads, { timeoutMs: 30_000 }, (after, upto) => query(sql, [...after, ...upto]));
 */
export async function inParts(
  query: Query,
  heads: readonly SealHead[],
  bounds: PartBounds,
  check: (after: Key, upto: Key) => Promise<unknown>,
): Promise<void> {
  const now = bounds.now ?? (() => performance.now());
  const seals = heads.filter((h) => !h.checkpoint);
  const ends: Key[] = seals.map((h) => [String(h.last.tx ?? -1n), h.last.id] as const);
  ends.push(LAST_KEY);
  const first = Math.max(1, bounds.firstSeals ?? 1);
  // The seals made before the month began hold few of its rows, if any (a clock ahead): one part for them all.
  const since = bounds.monthStart === undefined ? 0 : seals.findIndex((h) => h.sealedAt >= (bounds.monthStart as number));
  const before = since === -1 ? seals.length : since;
  let size = before > 0 ? before : first;
  let cut = 0;
  for (let at = 0, after: Key = FIRST_KEY; at < ends.length;) {
    const next = Math.min(ends.length - 1, at + size - 1);
    await query('SAVEPOINT audit_month_part');
    const started = now();
    try {
      await check(after, ends[next]);
    } catch (error) {
      if ((error as { code?: string }).code !== QUERY_CANCELED || (next === at && ++cut > 2)) throw error;
      await query('ROLLBACK TO SAVEPOINT audit_month_part');
      size = Math.max(1, Math.floor((next - at + 1) / 4));
      continue;
    }
    cut = 0;
    await query('RELEASE SAVEPOINT audit_month_part');
    const took = now() - started;
    if (at === 0 && before > 0 && next === before - 1) size = first;
    else if (took < bounds.timeoutMs / 8) size *= 2;
    else if (took > bounds.timeoutMs / 3) size = Math.max(1, Math.floor(size / 2));
    after = ends[next];
    at = next + 1;
  }
}

/**
 * The database's check of a month's partition (`audit_log_check_month(month date)`, migration
 * `AuditRetireByLeaf1766100000000`), or of the legacy partition (`audit_log_check_legacy(bound
 * date)`, migration `AuditRetireLegacyInParts1766700000000`); each has its parts, `<name>_chunk(date,
 * after_tx, after_id, upto_tx, upto_id)`. The date is the month's first day, or the legacy bound's.
 *
 * @example
 * const check: CheckFunction = 'audit_log_check_legacy';
 */
export type CheckFunction = 'audit_log_check_month' | 'audit_log_check_legacy';

/**
 * Checks the month's partition (`month`: `YYYY-MM`), or with `check` the legacy partition (`month`:
 * its bound), in parts in the database (`<check>_chunk`, migrations
 * `AuditRetireInChunks1766300000000` and `AuditRetireLegacyInParts1766700000000`), in the caller's
 * transaction, no statement reading more than a part: the first part locks the partition (SHARE)
 * until the transaction ends, and `<check>` of the same transaction then adds the parts up. False
 * when the function is not there or not granted (the partition is then checked in one statement).
 *
 * @example
 * if (await checkMonthInParts(query, 'public.audit_log', heads, '2026-01', { timeoutMs: 30_000 })) await query('SELECT * FROM audit_log_check_month($1)', ['2026-01-01']);
 */
export async function checkMonthInParts(
  query: Query,
  table: string,
  heads: readonly SealHead[],
  month: string,
  bounds: PartBounds,
  check: CheckFunction = 'audit_log_check_month',
): Promise<boolean> {
  const schema = quoteTablePath(table.slice(0, table.lastIndexOf('.')));
  const [{ usable }] = await query(
    `SELECT pg_catalog.has_function_privilege(pg_catalog.to_regprocedure($1), 'EXECUTE') IS TRUE AS usable`,
    [`${schema}.${check}_chunk(date, bigint, uuid, bigint, uuid)`],
  );
  if (!usable) return false;
  await inParts(query, heads, bounds, (after, upto) =>
    query(`SELECT ${schema}.${check}_chunk($1::date, $2::bigint, $3::uuid, $4::bigint, $5::uuid)`, [
      `${month}-01`,
      ...(after === FIRST_KEY ? [null, null] : after),
      ...(upto === LAST_KEY ? [null, null] : upto),
    ]),
  );
  return true;
}

/**
 * The month's check ({@link monthChunkSql}) run by the caller in parts of the sealing order, as
 * {@link inParts} cuts them, without a lock, as a dry run reads it: run it in a REPEATABLE READ
 * transaction, so that every part sees one snapshot. Reads the rows through the audit table (the
 * month's bounds prune to its partition), so the grants of the audit table suffice. The parts add
 * up as in `audit_log_check_month`: a row of no entry, or two rows in any parts on one entry, are
 * left out.
 *
 * @example
 * const analysis = await analyzeMonthInParts(query, { table: 'public.audit_log', sealTable: 'public.audit_seal', from, to }, heads, { timeoutMs: 30_000 });
 * analysis.leftOut; // 0 when every row is one a seal sealed
 */
export async function analyzeMonthInParts(
  query: Query,
  month: { table: string; sealTable: string; from: string; to: string },
  heads: readonly SealHead[],
  bounds: PartBounds,
): Promise<MonthAnalysis> {
  const where = `${PART_ROWS} AND l.occurred_at >= $5::timestamptz AND l.occurred_at < $6::timestamptz`;
  const totals = { n: 0, unsealed: 0, matched: 0, retained: new Map() as RetainedRows, covered: null as number | null };
  await inParts(query, heads, bounds, async (after, upto) => {
    const [part] = await query(monthChunkSql(quoteTablePath(month.table), month.sealTable, where), [
      ...after,
      ...upto,
      month.from,
      month.to,
    ]);
    totals.n += Number(part.n);
    totals.unsealed += Number(part.unsealed);
    totals.matched += Number(part.matched);
    const maps = part.maps as Buffer[];
    mergeRetained(totals.retained, new Map((part.seqs as string[]).map((seq, i) => [Number(seq), maps[i]])));
    if (part.covered !== null) totals.covered = Math.max(totals.covered ?? 0, Number(part.covered));
  });
  let entries = 0;
  for (const bitmap of totals.retained.values()) for (const byte of bitmap) entries += bitCount(byte);
  const covered = heads.find((h) => h.seq === totals.covered);
  return {
    rows: totals.n,
    unsealed: totals.unsealed,
    leftOut: totals.n - totals.unsealed - Math.min(totals.matched, entries),
    retained: totals.retained,
    covered: covered ? { seq: covered.seq, hash: covered.hash } : null,
  };
}

/** The bits set in a byte. */
function bitCount(byte: number): number {
  let count = 0;
  for (let v = byte; v !== 0; v &= v - 1) count += 1;
  return count;
}
