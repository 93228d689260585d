import { hash } from 'node:crypto';
import { type AuditRecord } from '../audit-entry';
import { hasDataPrototype } from '../json-safe';
import { ENTRY_DIGEST_V2_SQL, ENTRY_ENCODING_V2 } from '../privacy/encoding-v2';
import { payloadJson } from '../record-json';

/**
 * Version 1 of the entry encoding: what an entry's authentication code covers. The fields the
 * module sets when it creates the entry, in this order, as PostgreSQL gives them back as text
 * (`id`, `occurred_at` as epoch microseconds, the texts, `changes` and `metadata` in `jsonb`'s own
 * text form); never `tx` or `recorded_at`, which the database sets. One UTF-8 text: the prefix
 * `audit-entry-v1`, then per field `~` for NULL or its byte length in decimal, `:` and the field.
 * Version 2 (`privacy/encoding-v2.ts`, rows with personal-data commitments) has its own prefix
 * and list; rows of this one still verify.
 */
export const ENTRY_ENCODING_V1 = 'audit-entry-v1';

/** Positions, in the sealed columns of `row-encoding.ts` (`leaf_fields.cN`), of the fields version 1 covers. */
const V1_FIELDS = [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

/**
 * The entry digest of version 1 computed by PostgreSQL from the stored row, exactly as
 * {@link entryDigest} computes it from the entry at birth. Needs `LEAF_FIELDS` in the FROM list
 * (each column's text is computed once for both hashes).
 */
export const ENTRY_DIGEST_SQL = `CASE WHEN leaf_fields.c14 IS NULL THEN pg_catalog.sha256(pg_catalog.convert_to('${ENTRY_ENCODING_V1}' || ${V1_FIELDS.map(
  (i) => `COALESCE(pg_catalog.octet_length(leaf_fields.c${i})::text || ':' || leaf_fields.c${i}, '~')`,
).join(' || ')}, 'UTF8')) ELSE ${ENTRY_DIGEST_V2_SQL} END`;

/**
 * SHA-256 of the entry's version-1 encoding ({@link ENTRY_ENCODING_V1}), as PostgreSQL will store
 * the entry.
 *
 * @example
 * entryDigest(record).length; // 32
 */
export function entryDigest(record: AuditRecord): Buffer {
  // Version 2 (personal-data commitments): the actor's fields are left out, their commitments added last.
  const v2 = record.commitments !== undefined;
  // One string, hashed in one call (as UTF-8): a call per field would cost more than the hash.
  let text = v2 ? ENTRY_ENCODING_V2 : ENTRY_ENCODING_V1;
  text += field(record.id.toLowerCase());
  text += field(epochMicros(record.occurredAt));
  text += field(record.action);
  text += field(record.entityType);
  text += field(record.entityId);
  if (!v2) text += field(record.userId);
  text += field(record.outcome);
  if (!v2) text += field(record.ip) + field(record.userAgent);
  text += field(record.requestId);
  text += field(payloadJsonb(record, 'changes'));
  text += field(payloadJsonb(record, 'metadata'));
  if (v2) text += field(record.commitments);
  return hash('sha256', text, 'buffer');
}

function field(value: string | null | undefined): string {
  return value === null || value === undefined ? '~' : `${Buffer.byteLength(value, 'utf8')}:${value}`;
}

/** An ISO 8601 time as PostgreSQL's `extract(epoch FROM t) * 1000000` gives it: whole microseconds. */
function epochMicros(iso: string): string {
  const ms = Date.parse(iso);
  return ms === 0 ? '0' : `${ms}000`;
}

/**
 * `changes` or `metadata` as {@link jsonbText} writes the JSON text the INSERT sends (null for
 * none), made from the value itself: the value normalize() made is plain JSON data, which the
 * text would parse back to. Anything else (a record made by hand) goes through its text.
 */
function payloadJsonb(record: AuditRecord, key: 'changes' | 'metadata'): string | null {
  const value = record[key];
  if (value === null || value === undefined) return null;
  try {
    return plainJsonb(value);
  } catch (error) {
    if (error !== NOT_PLAIN) throw error;
    const json = payloadJson(record)[key];
    return json === null ? null : jsonbText(JSON.parse(json));
  }
}

/** Thrown by {@link plainJsonb} at the first value its JSON text would not parse back to. */
const NOT_PLAIN = new Error('not plain JSON data');

/**
 * {@link jsonbText} of a value known to be JSON data; throws {@link NOT_PLAIN} where the value
 * holds anything `JSON.stringify` would change (a `toJSON`, a Date, a boxed value, undefined, a
 * non-finite number, a hole in an array).
 */
function plainJsonb(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return PLAIN_TEXT.test(value) ? `"${value}"` : JSON.stringify(value);
    case 'number':
      if (Number.isInteger(value) && Math.abs(value) < 1e21) return String(value);
      if (!Number.isFinite(value)) throw NOT_PLAIN;
      return plainDecimal(JSON.stringify(value));
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    default:
      throw NOT_PLAIN;
  }
  if (value === null) return 'null';
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') throw NOT_PLAIN;
  if (Array.isArray(value)) {
    let text = '[';
    // A hole reads as undefined, which throws.
    for (let i = 0; i < value.length; i++) text += (i === 0 ? '' : ', ') + plainJsonb(value[i]);
    return `${text}]`;
  }
  if (!hasDataPrototype(value)) throw NOT_PLAIN;
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object);
  if (keys.length > 1) sortKeys(keys);
  let text = '{';
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    text += `${i === 0 ? '' : ', '}${PLAIN_TEXT.test(key) ? `"${key}"` : JSON.stringify(key)}: ${plainJsonb(object[key])}`;
  }
  return `${text}}`;
}

/** Sorts keys in jsonb's order; a few ASCII keys (the usual object) by insertion, without a comparator call per pair. */
function sortKeys(keys: string[]): void {
  if (keys.length > SMALL_OBJECT || !keys.every(isAscii)) {
    keys.sort(ASCII_KEYS.test(keys.join('')) ? compareAsciiKeys : compareKeys);
    return;
  }
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i];
    let j = i - 1;
    while (j >= 0 && (keys[j].length > key.length || (keys[j].length === key.length && keys[j] > key))) {
      keys[j + 1] = keys[j];
      j--;
    }
    keys[j + 1] = key;
  }
}

const SMALL_OBJECT = 16;

function isAscii(key: string): boolean {
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Text JSON writes as it is between quotes: printable ASCII but `"` and `\`. */
const PLAIN_TEXT = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

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
