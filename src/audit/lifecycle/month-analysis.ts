import { quoteTablePath } from '../audit-insert-sql';
import { compareKeys, LEAF_FIELDS, LEAF_SQL, type SortKey } from '../integrity/row-encoding';
import { MANIFEST_ENTRY_BYTES, readManifest } from '../integrity/seal';
import { hasBit, type RetainedRows, setBit } from './checkpoint';

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
       s.retention_month IS NOT NULL AS checkpoint FROM ${sealTable} AS s ORDER BY s.seq`,
  );
  return rows.map((row) => ({
    seq: Number(row.seq),
    last: { tx: row.last_tx === null ? null : BigInt(row.last_tx as string), id: row.last_id as string },
    rowCount: Number(row.row_count),
    hash: row.hash as Buffer,
    checkpoint: row.checkpoint as boolean,
  }));
}

/**
 * Reads the month's rows (`from` inclusive to `to` exclusive, by `occurred_at`: PostgreSQL reads
 * only that month's partition) and finds each in the manifest of the seal whose range holds it,
 * by its id and its leaf prefix (a row is sealed once: a second row on one entry is left out).
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
  // Each row's leaf prefix too: a copy of a sealed row (same id, another month) is not that row.
  const rows = await query(
    `SELECT l.id::text AS id, l.tx::text AS tx, pg_catalog.substr(${LEAF_SQL}, 1, 8) AS leaf
     FROM ${quoteTablePath(table)} AS l, ${LEAF_FIELDS}
     WHERE l.occurred_at >= $1::timestamptz AND l.occurred_at < $2::timestamptz`,
    [from, to],
  );
  const seals = heads.filter((head) => !head.checkpoint);
  const bySeal = new Map<number, { id: string; leaf: Buffer }[]>();
  let unsealed = 0;
  for (const row of rows) {
    const key: SortKey = { tx: row.tx === null ? null : BigInt(row.tx as string), id: row.id as string };
    // The first seal whose last row is at or after the row's key is the one whose range holds it.
    let low = 0;
    let high = seals.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (compareKeys(seals[middle].last, key) >= 0) high = middle;
      else low = middle + 1;
    }
    if (low === seals.length) {
      unsealed += 1;
      continue;
    }
    const sealed = bySeal.get(seals[low].seq) ?? [];
    sealed.push({ id: key.id, leaf: row.leaf as Buffer });
    bySeal.set(seals[low].seq, sealed);
  }
  const retained: RetainedRows = new Map();
  let leftOut = 0;
  for (const [seq, sealed] of bySeal) {
    const [{ manifest }] = (await query(`SELECT s.manifest FROM ${sealTable} AS s WHERE s.seq = $1`, [seq])) as { manifest: Buffer }[];
    const offsets = readManifest(manifest);
    const bitmap = Buffer.alloc(Math.ceil(manifest.length / MANIFEST_ENTRY_BYTES / 8));
    for (const { id, leaf } of sealed) {
      const at = offsets.get(id);
      // One row per manifest entry, and the one whose leaf the seal names.
      if (at === undefined || !manifest.subarray(at, at + 8).equals(leaf) || hasBit(bitmap, (at - 16) / MANIFEST_ENTRY_BYTES)) {
        leftOut += 1;
      } else setBit(bitmap, (at - 16) / MANIFEST_ENTRY_BYTES);
    }
    retained.set(seq, bitmap);
  }
  const newest = Math.max(-1, ...bySeal.keys());
  const head = heads.find((h) => h.seq === newest);
  return { rows: rows.length, unsealed, leftOut, retained, covered: head ? { seq: head.seq, hash: head.hash } : null };
}
