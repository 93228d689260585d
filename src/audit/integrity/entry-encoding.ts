import { hash } from 'node:crypto';
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
  // One buffer, hashed in one call: the version byte, then per field its length and bytes.
  let size = 1;
  const lengths = fields.map((field) => {
    const bytes = field === null || field === undefined ? -1 : Buffer.byteLength(field, 'utf8');
    size += 4 + Math.max(bytes, 0);
    return bytes;
  });
  const encoding = Buffer.allocUnsafe(size);
  encoding[0] = ENTRY_ENCODING_V1;
  let at = 1;
  fields.forEach((field, i) => {
    if (lengths[i] < 0) {
      NULL_BYTES.copy(encoding, at);
      at += 4;
      return;
    }
    encoding.writeUInt32BE(lengths[i], at);
    at += 4 + encoding.write(field as string, at + 4, 'utf8');
  });
  return hash('sha256', encoding, 'buffer');
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
  if (typeof value === 'number') {
    if (Number.isInteger(value) && Math.abs(value) < 1e21) return String(value);
    return plainDecimal(JSON.stringify(value));
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) {
    let text = '[';
    for (let i = 0; i < value.length; i++) text += (i === 0 ? '' : ', ') + jsonbText(value[i]);
    return `${text}]`;
  }
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object);
  if (keys.length > 1) keys.sort(ASCII_KEYS.test(keys.join('')) ? compareAsciiKeys : compareKeys);
  let text = '{';
  for (let i = 0; i < keys.length; i++) text += `${i === 0 ? '' : ', '}${JSON.stringify(keys[i])}: ${jsonbText(object[keys[i]])}`;
  return `${text}}`;
}

// eslint-disable-next-line no-control-regex -- every ASCII character, control characters included
const ASCII_KEYS = /^[\x00-\x7f]*$/;

/** jsonb's key order for ASCII keys: length, then code units (one byte each). */
function compareAsciiKeys(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** jsonb's key order: UTF-8 byte length, then bytes. */
function compareKeys(a: string, b: string): number {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length - y.length || Buffer.compare(x, y);
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
