import { createHash } from 'node:crypto';
import { type AuditRecord } from '../audit-entry';
import { payloadJson } from '../record-json';

/**
 * Version 1 of the entry encoding: what an entry's authentication code covers. The fields the
 * module sets when it creates the entry, in this order, as PostgreSQL gives them back as text
 * (`id`, `occurred_at` as epoch microseconds, the texts, `changes` and `metadata` in `jsonb`'s own
 * text form); never `tx` or `recorded_at`, which the database sets. A later version (issue 22's
 * personal-data commitments) gets its own byte and its own list; rows of this one still verify.
 */
export const ENTRY_ENCODING_V1 = 1;

/** Positions, in the sealed columns of `row-encoding.ts` (`leaf_fields.cN`), of the fields version 1 covers. */
const V1_FIELDS = [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

const NULL_FIELD = '\\xffffffff';

/**
 * The entry digest of version 1 computed by PostgreSQL from the stored row, exactly as
 * {@link entryDigest} computes it from the entry at birth. Needs `LEAF_FIELDS` in the FROM list
 * (each column's text is computed once for both hashes).
 */
export const ENTRY_DIGEST_SQL = `pg_catalog.sha256('\\x01'::bytea || ${V1_FIELDS.map(
  (i) =>
    `COALESCE(pg_catalog.int4send(pg_catalog.octet_length(leaf_fields.c${i})) || pg_catalog.convert_to(leaf_fields.c${i}, 'UTF8'), '${NULL_FIELD}'::bytea)`,
).join(' || ')})`;

const NULL_BYTES = Buffer.from([0xff, 0xff, 0xff, 0xff]);

/**
 * SHA-256 of the entry's version-1 encoding: the version byte, then each field as a 4-byte
 * big-endian length and its UTF-8 bytes (`ff ff ff ff` for null), as PostgreSQL will store it.
 *
 * @example
 * entryDigest(record).length; // 32
 */
export function entryDigest(record: AuditRecord): Buffer {
  const { changes, metadata } = payloadJson(record);
  const fields = [
    record.id.toLowerCase(),
    epochMicros(record.occurredAt),
    record.action,
    record.entityType,
    record.entityId,
    record.userId,
    record.outcome,
    record.ip,
    record.userAgent,
    record.requestId,
    changes === null ? null : jsonbText(JSON.parse(changes)),
    metadata === null ? null : jsonbText(JSON.parse(metadata)),
  ];
  const hash = createHash('sha256').update(Buffer.from([ENTRY_ENCODING_V1]));
  const length = Buffer.allocUnsafe(4);
  for (const field of fields) {
    if (field === null || field === undefined) {
      hash.update(NULL_BYTES);
      continue;
    }
    const bytes = Buffer.from(field, 'utf8');
    length.writeUInt32BE(bytes.length);
    hash.update(length).update(bytes);
  }
  return hash.digest();
}

/** An ISO 8601 time as PostgreSQL's `extract(epoch FROM t) * 1000000` gives it: whole microseconds. */
function epochMicros(iso: string): string {
  return (BigInt(Date.parse(iso)) * 1000n).toString();
}

/**
 * A value parsed from JSON text, written as PostgreSQL writes it out of a `jsonb` column: object
 * keys ordered by byte length then bytes, `": "` and `", "` between members, numbers in plain
 * decimal, strings escaped as `escape_json` does.
 *
 * @example
 * jsonbText({ bb: 1, a: [1e21, 'x'] }); // '{"a": [1000000000000000000000, "x"], "bb": 1}'
 */
export function jsonbText(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return plainDecimal(JSON.stringify(value));
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) return `[${value.map(jsonbText).join(', ')}]`;
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object).map((key) => ({ key, bytes: Buffer.from(key, 'utf8') }));
  keys.sort((a, b) => a.bytes.length - b.bytes.length || Buffer.compare(a.bytes, b.bytes));
  return `{${keys.map(({ key }) => `${JSON.stringify(key)}: ${jsonbText(object[key])}`).join(', ')}}`;
}

/** A JSON number as PostgreSQL's `numeric` prints it: `1e+21` → `1000000000000000000000`, `1.5e-7` → `0.00000015`. */
function plainDecimal(text: string): string {
  const match = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (!match) return text;
  const [, sign, whole, fraction = '', exponentText] = match;
  const digits = whole + fraction;
  const point = whole.length + Number(exponentText);
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}
