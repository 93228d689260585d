import { createHash } from 'node:crypto';
import { LEAF_V2_SQL, leafHashV2 } from '../privacy/encoding-v2';

/**
 * A timestamp as microseconds since the epoch, as text; NULL where that does not fit a bigint
 * (infinity, or from the year 200 000 on): such a row is never sealed (see `row-validity.ts`), and
 * reading it must not fail the query that reads the others.
 */
function micros(column: string): string {
  // Compared as timestamps, not by their epoch: extract() is the costly part, and it runs once.
  return `CASE WHEN ${column} > '-infinity' AND ${column} < '200000-01-01 00:00:00+00' THEN (extract(epoch FROM ${column}) * 1000000)::bigint::text END`;
}

/**
 * The columns of `audit_log` a seal covers, in the order they are encoded, each selected as text:
 * timestamps as microseconds since the epoch, `jsonb` in PostgreSQL's own text form (keys
 * sorted by length then bytes, one space after `:` and `,`). A column added to `audit_log` later
 * comes with a new encoding version.
 */
const SEALED_COLUMNS = [
  'id::text',
  'tx::text',
  micros('occurred_at'),
  'action',
  'entity_type',
  'entity_id',
  'user_id',
  'outcome',
  'ip',
  'user_agent',
  'request_id',
  'changes::text',
  'metadata::text',
  micros('recorded_at'),
  // Row encoding version 2 (personal-data commitments, docs/PRIVACY.md): NULL in a version-1 row.
  'commitments',
];

/** The sealed columns as text, `c0` … `c14`, in encoding order (for reading rows whole). */
export const SEALED_COLUMNS_SQL = SEALED_COLUMNS.map((column, i) => `${column} AS c${i}`).join(', ');

/** The columns of version 1 of the row encoding: all but `commitments`. */
const V1_COLUMNS = 14;

/** How many columns {@link SEALED_COLUMNS_SQL} selects. */
export const SEALED_COLUMN_COUNT = SEALED_COLUMNS.length;

/**
 * The sealed columns of the row as text, each computed once, for {@link LEAF_SQL}: add it to the
 * FROM list after the audit table (aliased `l` or not). `OFFSET 0` keeps PostgreSQL from folding
 * it into the outer query, which would compute each text twice (for its length and its bytes).
 */
export const LEAF_FIELDS = `LATERAL (SELECT ${SEALED_COLUMNS_SQL} OFFSET 0) AS leaf_fields`;

/**
 * {@link LEAF_FIELDS} for a table made before the `commitments` column (its migration not run
 * yet): every row is of version 1. The sealer uses it there, so that it goes on sealing until the
 * migration runs.
 */
export const LEAF_FIELDS_BEFORE_COMMITMENTS = LEAF_FIELDS.replace(/commitments AS c14/, 'NULL::text AS c14');

/**
 * The row's leaf hash computed by PostgreSQL, exactly as {@link leafHash} computes it: only 32
 * bytes a row leave the server. Needs {@link LEAF_FIELDS} in the FROM list. `pg_catalog` is named
 * so that no function on the search path can stand in for it.
 */
export const LEAF_SQL = `CASE WHEN leaf_fields.c14 IS NULL THEN pg_catalog.sha256('\\x00'::bytea || ${SEALED_COLUMNS.slice(0, V1_COLUMNS)
  .map(
    (_, i) =>
      `COALESCE(pg_catalog.int4send(pg_catalog.octet_length(leaf_fields.c${i})) || pg_catalog.convert_to(leaf_fields.c${i}, 'UTF8'), '\\xffffffff'::bytea)`,
  )
  .join(' || ')}) ELSE ${LEAF_V2_SQL} END`;

/** One row as selected with {@link SEALED_COLUMNS_SQL}: `[id, tx, …]`, each text or null. */
export type SealedRow = (string | null)[];

const NULL_FIELD = Buffer.from([0xff, 0xff, 0xff, 0xff]);
const LEAF_PREFIX = Buffer.from([0x00]);

/**
 * The Merkle leaf hash of one row: SHA-256 over `0x00` and the row's fields, each as a 4-byte
 * big-endian byte length and its UTF-8 bytes, or `ff ff ff ff` for NULL (RFC 6962 leaf). A row
 * with commitments (its 15th field) is hashed as version 2 (`privacy/encoding-v2.ts`).
 *
 * @example
 * leafHash(['0190c9b8-…', '812', '1764300000000000', 'nda_created', null]).length; // 32
 */
export function leafHash(row: SealedRow): Buffer {
  if (row.length > V1_COLUMNS && row[V1_COLUMNS] !== null) return leafHashV2(row);
  const hash = createHash('sha256').update(LEAF_PREFIX);
  const length = Buffer.allocUnsafe(4);
  for (const field of row.slice(0, V1_COLUMNS)) {
    if (field === null) {
      hash.update(NULL_FIELD);
      continue;
    }
    const bytes = Buffer.from(field, 'utf8');
    length.writeUInt32BE(bytes.length);
    hash.update(length).update(bytes);
  }
  return hash.digest();
}

/** A row's position in sealing order: by `tx` (NULL first: rows from before integrity), then id. */
export interface RowKey {
  tx: string | null;
  id: string;
}

/** A row's key as the verifier sorts it: `tx` as a number (or null), `id` as canonical UUID text. */
export interface SortKey {
  tx: bigint | null;
  id: string;
}

/**
 * Orders keys as PostgreSQL orders `(tx NULLS FIRST, id)`: canonical UUID texts (lowercase, of
 * one length) sort as the UUIDs' bytes do.
 *
 * @example
 * [{ tx: 10n, id: 'b…' }, { tx: 9n, id: 'c…' }].sort(compareKeys); // tx 9 first
 */
export function compareKeys(a: SortKey, b: SortKey): number {
  if (a.tx !== b.tx) {
    if (a.tx === null) return -1;
    if (b.tx === null) return 1;
    return a.tx < b.tx ? -1 : 1;
  }
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * SQL that selects the rows after `after` (exclusive) up to `upTo` (inclusive) in sealing order,
 * with the parameters it needs, numbered from `$1`. Either bound may be absent.
 *
 * @example
 * const { where, parameters } = keyRange({ tx: '812', id: '0190c9b8-…' }, null);
 */
export function keyRange(after: RowKey | null, upTo: RowKey | null): { where: string; parameters: string[] } {
  const parameters: string[] = [];
  const p = (value: string) => `$${parameters.push(value)}`;
  const parts: string[] = [];
  // The plain bounds on tx beside each OR are what the BRIN index on tx can use.
  if (after) {
    parts.push(
      after.tx === null
        ? `(tx IS NOT NULL OR id > ${p(after.id)}::uuid)`
        : `tx >= ${p(after.tx)}::bigint AND (tx > $${parameters.length}::bigint OR (tx = $${parameters.length}::bigint AND id > ${p(after.id)}::uuid))`,
    );
  }
  if (upTo) {
    const tx = upTo.tx === null ? null : p(upTo.tx);
    parts.push(
      tx === null
        ? `(tx IS NULL AND id <= ${p(upTo.id)}::uuid)`
        : after && after.tx !== null
          ? `tx <= ${tx}::bigint AND (tx < ${tx}::bigint OR (tx = ${tx}::bigint AND id <= ${p(upTo.id)}::uuid))`
          : `(tx IS NULL OR tx < ${tx}::bigint OR (tx = ${tx}::bigint AND id <= ${p(upTo.id)}::uuid))`,
    );
  }
  return { where: parts.length ? parts.join(' AND ') : 'TRUE', parameters };
}
