import { createHash } from 'node:crypto';

/**
 * Version 2 of the row encoding, for rows written with personal-data commitments (the `privacy`
 * option): the seal's leaf and the entry code cover each personal value's commitment (the column
 * `commitments`) instead of the value, so that erasing the values breaks neither. A row without
 * commitments keeps version 1, unchanged. The positions are those of the sealed columns of
 * `row-encoding.ts` (`leaf_fields.cN`): 6, 8 and 9 (`user_id`, `ip`, `user_agent`) are left out,
 * 14 (`commitments`) added.
 */
export const ROW_ENCODING_V2 = 'audit-row-v2';

/** The entry encoding of version 2: as version 1 without the actor's personal fields, with `commitments` last. */
export const ENTRY_ENCODING_V2 = 'audit-entry-v2';

/** Positions, in the sealed columns, of what a version-2 leaf covers. */
export const V2_LEAF_FIELDS = [0, 1, 2, 3, 4, 5, 7, 10, 11, 12, 13, 14];
const V2_ENTRY_FIELDS = [0, 2, 3, 4, 5, 7, 10, 11, 12, 14];

/** `0x00`, then the version as the first length-prefixed field: a version-1 row's first field is its id, never this. */
export const V2_LEAF_PREFIX = Buffer.concat([Buffer.from([0, 0, 0, 0, ROW_ENCODING_V2.length]), Buffer.from(ROW_ENCODING_V2, 'utf8')]);

/** The version-2 leaf hash computed by PostgreSQL (needs `LEAF_FIELDS` in the FROM list). */
export const LEAF_V2_SQL = `pg_catalog.sha256('\\x${V2_LEAF_PREFIX.toString('hex')}'::bytea || ${V2_LEAF_FIELDS.map(
  (i) =>
    `COALESCE(pg_catalog.int4send(pg_catalog.octet_length(leaf_fields.c${i})) || pg_catalog.convert_to(leaf_fields.c${i}, 'UTF8'), '\\xffffffff'::bytea)`,
).join(' || ')})`;

/** The version-2 entry digest computed by PostgreSQL (needs `LEAF_FIELDS` in the FROM list). */
export const ENTRY_DIGEST_V2_SQL = `pg_catalog.sha256(pg_catalog.convert_to('${ENTRY_ENCODING_V2}' || ${V2_ENTRY_FIELDS.map(
  (i) => `COALESCE(pg_catalog.octet_length(leaf_fields.c${i})::text || ':' || leaf_fields.c${i}, '~')`,
).join(' || ')}, 'UTF8'))`;

/**
 * The version-2 leaf of a row selected with `SEALED_COLUMNS_SQL` (15 fields, `commitments` last
 * and not null), as {@link LEAF_V2_SQL} computes it.
 *
 * @example
 * leafHashV2(row).length; // 32
 */
export function leafHashV2(row: readonly (string | null)[]): Buffer {
  const hash = createHash('sha256').update(V2_LEAF_PREFIX);
  const length = Buffer.allocUnsafe(4);
  for (const i of V2_LEAF_FIELDS) {
    const field = row[i] ?? null;
    if (field === null) {
      hash.update(Buffer.from([0xff, 0xff, 0xff, 0xff]));
      continue;
    }
    const bytes = Buffer.from(field, 'utf8');
    length.writeUInt32BE(bytes.length);
    hash.update(length).update(bytes);
  }
  return hash.digest();
}
