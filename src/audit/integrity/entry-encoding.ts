import { hash } from 'node:crypto';
import { type AuditRecord } from '../audit-entry';
import { ENTRY_DIGEST_V2_SQL, ENTRY_ENCODING_V2 } from '../privacy/encoding-v2';
import { payloadJson } from '../record-json';
import { NOT_PLAIN, plainDecimal, plainJsonb, sortJsonbKeys } from './jsonb-render';

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
  const fields = v2
    ? [
        record.id.toLowerCase(),
        epochMicros(record.occurredAt),
        record.action,
        record.entityType,
        record.entityId,
        record.outcome,
        record.requestId,
        payloadJsonb(record, 'changes'),
        payloadJsonb(record, 'metadata'),
        record.commitments,
      ]
    : [
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
        payloadJsonb(record, 'changes'),
        payloadJsonb(record, 'metadata'),
      ];
  const prefix = v2 ? ENTRY_ENCODING_V2 : ENTRY_ENCODING_V1;
  // One text hashed in one call. Each length written first in characters: when the whole text is
  // ASCII (its UTF-8 is as long as it), each field's is its length in bytes too.
  const text = encoding(prefix, fields, charLength);
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length === text.length) return hash('sha256', bytes, 'buffer');
  return hash('sha256', encoding(prefix, fields, utf8Length), 'buffer');
}

/** `prefix`, then per field `~` for none, or its length as `measure` gives it, `:` and the field. */
function encoding(prefix: string, fields: readonly (string | null | undefined)[], measure: (value: string) => number): string {
  let text = prefix;
  for (let i = 0; i < fields.length; i++) {
    const value = fields[i];
    text += value === null || value === undefined ? '~' : `${measure(value)}:${value}`;
  }
  return text;
}

function charLength(value: string): number {
  return value.length;
}

function utf8Length(value: string): number {
  return Buffer.byteLength(value, 'utf8');
}

let lastIso = '';
let lastMicros = '';

/**
 * An ISO 8601 time as PostgreSQL's `extract(epoch FROM t) * 1000000` gives it: whole microseconds.
 * Remembered for the last time asked: the entries of one millisecond share it.
 */
function epochMicros(iso: string): string {
  if (iso !== lastIso) {
    const ms = Date.parse(iso);
    lastMicros = ms === 0 ? '0' : `${ms}000`;
    lastIso = iso;
  }
  return lastMicros;
}

/**
 * `changes` or `metadata` as {@link jsonbText} writes the JSON text the INSERT sends (null for
 * none), made from the value itself: the value normalize() made is plain JSON data, which the
 * text would parse back to. Anything else (a record made by hand) goes through its text.
 */
function payloadJsonb(record: AuditRecord, key: 'changes' | 'metadata'): string | null {
  const value = record[key];
  if (value === null || value === undefined) return null;
  // The text the entry was measured with (made once per record). Without a `\` in it, no text in
  // the value needs escaping; a value JSON leaves out (a function) has none, and is not plain data.
  const json = payloadJson(record)[key];
  try {
    return plainJsonb(value, typeof json === 'string' && !json.includes('\\'));
  } catch (error) {
    if (error !== NOT_PLAIN) throw error;
    return json === null ? null : jsonbText(JSON.parse(json));
  }
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
  if (keys.length > 1) sortJsonbKeys(keys);
  let text = '{';
  for (let i = 0; i < keys.length; i++) text += `${i === 0 ? '' : ', '}${JSON.stringify(keys[i])}: ${jsonbText(object[keys[i]])}`;
  return `${text}}`;
}
