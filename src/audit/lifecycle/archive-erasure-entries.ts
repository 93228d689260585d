import { judgeEntry, type ResolvedEntryKey } from '../integrity/entry-auth';
import { type Anomaly } from '../integrity/verifier';
import { ERASURE_ACTION } from '../privacy/erasure';
import { archiveRowsDigest } from '../privacy/archive-rows-digest';
import { type ArchiveHeader, rowEntryDigest } from './archive-format';

/** An erasure entry as the offline check counts it: its row id, its erasure id, and the rows it accounts for in this archive. */
export interface ArchiveErasureEntry {
  id: string;
  erasure: string;
  count: string;
}

/**
 * The erasure entries an archive's seals file lists, for `PersonalChecks.finish`: each entry
 * carried whole (`erasureEntries`) read from its own `changes` and, with entry keys, judged by
 * its entry code as the table's rows are, against the chain's entry-authentication `boundary`
 * (a forged one records nothing: it is in `forged`, named `row_forged`; one carried a second time
 * is `row_invalid` and counts once), each accounting for the rows {@link entryAllowance} says
 * given `erasedByMonth` (the archive's rows erased under an erasure, by month of `occurred_at`,
 * of those whose `tx` `counts` accepts) and `erasedIds` (the ids of those rows, all of them); then, only in an archive without `erasureEntries`
 * (written before entries were carried whole), the summary (`erasures`), taken on the archive's
 * word. An entry without a code proves nothing of itself: it accounts only for rows it could have
 * erased before entry authentication began ({@link uncodedCounts}), and with entry keys one
 * without a `tx` in a chain with a boundary is forged (the module writes every erasure entry with
 * its transaction's id).
 *
 * @example
 * const { entries, forged } = archiveErasureEntries(header, keys, boundary, (a) => found.push(a), (id) => personal.erasedByMonth(id));
 */
export function archiveErasureEntries(
  header: ArchiveHeader,
  keys: readonly ResolvedEntryKey[] | null,
  boundary: string | null,
  add: (a: Anomaly) => void,
  erasedByMonth: (erasure: string, counts?: (tx: bigint | null) => boolean) => ReadonlyMap<string, number> = () => new Map(),
  erasedIds: (erasure: string) => readonly string[] = () => [],
): { entries: ArchiveErasureEntry[]; forged: Set<string> } {
  const entries: ArchiveErasureEntry[] = [];
  const forged = new Set<string>();
  const whole = new Set<string>();
  const seen = new Set<string>();
  for (const [i, fields] of (Array.isArray(header.erasureEntries) ? header.erasureEntries : []).entries()) {
    const valid = Array.isArray(fields) && fields.length === 17 && fields.every((f) => f === null || typeof f === 'string');
    const id = valid ? (fields[0] as string) : `erasureEntries[${i}]`;
    const erasure = valid ? erasureOf(fields) : null;
    if (!valid || fields[3] !== ERASURE_ACTION || typeof erasure?.id !== 'string') {
      add({ kind: 'row_invalid', row: id, detail: `the seals file's erasure entry ${i} is not an ${ERASURE_ACTION} entry's row` });
      continue;
    }
    // An entry is one row of the trail: carried a second time it would count its rows twice.
    if (seen.has(id)) {
      add({ kind: 'row_invalid', row: id, detail: `the seals file carries the ${ERASURE_ACTION} entry ${id} more than once (entry ${i})` });
      continue;
    }
    seen.add(id);
    whole.add(erasure.id);
    const tx = fields[1] !== null && /^[0-9]+$/.test(fields[1]) ? BigInt(fields[1]) : null;
    const from = boundary === null ? null : BigInt(boundary);
    if (keys && keys.length > 0) {
      // As the table's check judges a row: without a code it is forged only after entry authentication began.
      const verdict =
        fields[15] === null && tx === null && from !== null
          ? { kind: 'forged' as const, reason: `it carries no entry code and no tx, and the chain authenticates entries from tx ${from}` }
          : judgeEntry({ tx, code: fields[15], digest: rowEntryDigest(fields) }, from, keys);
      if (verdict.kind === 'forged') {
        forged.add(id);
        add({ kind: 'row_forged', row: id, detail: `the ${ERASURE_ACTION} entry the seals file carries: ${verdict.reason}` });
      }
    }
    let count: number;
    if (fields[15] === null) {
      const erased = erasedByMonth(erasure.id, uncodedCounts(tx, from));
      let present = 0;
      for (const n of erased.values()) present += n;
      count = Math.min(entryAllowance(fields, header.month, erased, erasedIds(erasure.id)), present);
    } else {
      count = entryAllowance(fields, header.month, erasedByMonth(erasure.id), erasedIds(erasure.id));
    }
    entries.push({ id, erasure: erasure.id, count: String(count) });
  }
  // The summary speaks for an archive written before entries were carried whole; beside them it is not authenticated.
  if (!Array.isArray(header.erasureEntries)) {
    for (const e of header.erasures ?? []) {
      if (!whole.has(e.erasure)) entries.push({ id: e.entry, erasure: e.erasure, count: String(e.rows) });
    }
  }
  return { entries, forged };
}

/**
 * Which erased rows, by their `tx`, an erasure entry without an entry code may account for: an
 * erasure erases rows written before it, so only rows whose `tx` is below the entry's own (`tx`;
 * none when it has no `tx`), and, as nothing authenticates the entry, only rows written before
 * the chain's entry-authentication boundary (`boundary`). A row without a `tx` was written before
 * rows carried one, and counts.
 *
 * @example
 * uncodedCounts(700n, 812n)(650n); // true
 * uncodedCounts(700n, 812n)(900n); // false: written after entry authentication began
 */
export function uncodedCounts(tx: bigint | null, boundary: bigint | null): (rowTx: bigint | null) => boolean {
  return (rowTx) => rowTx === null || (tx !== null && rowTx < tx && (boundary === null || rowTx < boundary));
}

/**
 * The most rows an erasure entry accounts for in the archive of `month`: when the entry names the
 * month in `archives` (written by `audit-erase --archive-dir`, which rewrote every row of the
 * subject in that archive), exactly `archives[month]`; otherwise the rows it erased in the
 * database (`rows`: an archive written after the erasure holds those erased). From the entry's
 * `changes`, which its code covers.
 *
 * @example
 * entryCount(entryFields, '2026-01'); // 3
 */
export function entryCount(entry: readonly (string | null)[], month: string): number {
  const erasure = erasureOf(entry);
  const archives = erasure?.archives;
  if (archives && typeof archives === 'object' && Object.hasOwn(archives, month)) return wholeCount(archives[month]);
  return wholeCount(erasure?.rows);
}

/**
 * The rows an erasure entry accounts for in the archive of `month`, given the archive's rows
 * erased under its erasure by month of their `occurred_at` (`erased`) and their ids (`ids`). An
 * entry that records what its database erasure erased by month (`months`, written since it was
 * recorded) accounts for each month's rows up to what it erased of that month, and accounts for
 * them all when the entry names the archive's month in `archives` (the archive was to be rewritten
 * by it): an entry that names the rows it erases there (`archiveRows`, the digest of their ids,
 * written since it was recorded) only when the rows erased under it are exactly those, so that
 * an entry whose rewrite never happened (a failed run, or an entry copied into an archive it did
 * not rewrite) accounts for no other row; an entry without `archiveRows` when they are no more
 * than its count. An authentic entry copied from another archive thus accounts for no row of a
 * month it did not erase. An older entry (no `months`) accounts for {@link entryCount}. From the
 * entry's `changes`, which its code covers.
 *
 * @example
 * entryAllowance(entryFields, '2026-01', new Map([['2026-01', 2]]), ids); // 0 when the entry erased nothing of 2026-01
 */
export function entryAllowance(
  entry: readonly (string | null)[],
  month: string,
  erased: ReadonlyMap<string, number>,
  ids: readonly string[] = [],
): number {
  const erasure = erasureOf(entry);
  const months = erasure?.months;
  if (!months || typeof months !== 'object' || Array.isArray(months)) return entryCount(entry, month);
  let withinMonths = 0;
  for (const [rowMonth, n] of erased) withinMonths += Math.min(n, Object.hasOwn(months, rowMonth) ? wholeCount(months[rowMonth]) : 0);
  const archives = erasure.archives;
  let rewritten = archives && typeof archives === 'object' && Object.hasOwn(archives, month) ? wholeCount(archives[month]) : 0;
  const named = erasure.archiveRows;
  if (rewritten > 0 && named !== undefined) {
    const digest = named && typeof named === 'object' && Object.hasOwn(named, month) ? named[month] : null;
    if (digest !== archiveRowsDigest(ids)) rewritten = 0;
  }
  return Math.max(withinMonths, rewritten);
}

/**
 * The `changes.erasure` of an entry's fields as an archive holds them, or null.
 *
 * @example
 * erasureOf(entryFields)?.id; // the erasure id
 */
export function erasureOf(entry: readonly (string | null)[]): ErasureChanges | null {
  try {
    const changes = JSON.parse(entry[11] ?? 'null') as { erasure?: unknown } | null;
    const erasure = changes?.erasure;
    return erasure && typeof erasure === 'object' ? (erasure as ErasureChanges) : null;
  } catch {
    return null;
  }
}

/**
 * An erasure entry's `changes.erasure` as an archive holds it, no field checked yet.
 *
 * @example
 * const changes: ErasureChanges = { id: erasureId, rows: 2, months: { '2026-01': 2 }, archives: { '2025-11': 1 } };
 */
export interface ErasureChanges {
  id?: unknown;
  rows?: unknown;
  /** Rows its database erasure erased, by month of their `occurred_at` (entries recorded since it was added). */
  months?: Record<string, unknown>;
  /** Rows `audit-erase --archive-dir` erased, by archive month. */
  archives?: Record<string, unknown>;
  /** Those rows named, by archive month: the digest of their ids (entries recorded since it was added). */
  archiveRows?: Record<string, unknown>;
}

function wholeCount(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : 0;
}
