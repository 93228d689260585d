import { type AuditRecord } from './audit-entry';

/** `changes` and `metadata` of a record as JSON text; `null` for a null value. */
export interface PayloadJson {
  changes: string | null;
  metadata: string | null;
}

/** Where a record keeps its payload text: a symbol, not enumerable, so no copy or serialization of the record sees it. */
const PAYLOAD_JSON = Symbol('auditPayloadJson');

/**
 * The JSON text of a record's `changes` and `metadata`, made once per record object: normalize()
 * measures the entry with it and the writer's INSERT sends the same strings.
 *
 * @example
 * payloadJson(record).changes; // '{"title":"Supplier NDA"}'
 */
export function payloadJson(record: AuditRecord): PayloadJson {
  const cached = (record as { [PAYLOAD_JSON]?: PayloadJson })[PAYLOAD_JSON];
  if (cached) return cached;
  const json = { changes: stringify(record.changes), metadata: stringify(record.metadata) };
  // A frozen record (or a proxy that refuses) is serialized again at its next use.
  if (Object.isExtensible(record)) Object.defineProperty(record, PAYLOAD_JSON, { value: json });
  return json;
}

/**
 * The size in bytes of `JSON.stringify(record)`, from its small fixed fields and the payload
 * text already made, without serializing the record again.
 *
 * @example
 * recordBytes(record) === Buffer.byteLength(JSON.stringify(record)); // true
 */
export function recordBytes(record: AuditRecord): number {
  const payload = payloadJson(record);
  // `{` and `}`, and a comma between members.
  let bytes = 1;
  for (const key in record) {
    const value = key === 'changes' || key === 'metadata' ? payload[key] : record[key as keyof AuditRecord];
    if ((typeof value !== 'string' && value !== null) || plainBytes(key) < 0) return serializedBytes(record);
    bytes += key.length + 4 + (value === null ? 4 : key === 'changes' || key === 'metadata' ? Buffer.byteLength(value) : textBytes(value));
  }
  return bytes;
}

/** The members of a record as normalize() first makes it (no entry code, no personal values). */
const NORMALIZED_KEYS = [
  'id',
  'occurredAt',
  'action',
  'entityType',
  'entityId',
  'userId',
  'outcome',
  'ip',
  'userAgent',
  'requestId',
  'changes',
  'metadata',
] as const;
/** `{` and `}`, each member's quoted name and colon, and the commas between members. */
const NORMALIZED_FRAME_BYTES = 1 + NORMALIZED_KEYS.reduce((n, key) => n + key.length + 4, 0);

/**
 * {@link recordBytes} of a record that has exactly the members normalize() first gives it (ten
 * texts or nulls, then `changes` and `metadata`, nothing else): the same sum, without walking its
 * keys. Any other record must be measured by {@link recordBytes}.
 *
 * @example
 * normalizedRecordBytes(record) === Buffer.byteLength(JSON.stringify(record)); // true for such a record
 */
export function normalizedRecordBytes(record: AuditRecord): number {
  const { changes, metadata } = payloadJson(record);
  return (
    NORMALIZED_FRAME_BYTES +
    fieldBytes(record.id) +
    fieldBytes(record.occurredAt) +
    fieldBytes(record.action) +
    fieldBytes(record.entityType) +
    fieldBytes(record.entityId) +
    fieldBytes(record.userId) +
    fieldBytes(record.outcome) +
    fieldBytes(record.ip) +
    fieldBytes(record.userAgent) +
    fieldBytes(record.requestId) +
    (changes === null ? 4 : Buffer.byteLength(changes)) +
    (metadata === null ? 4 : Buffer.byteLength(metadata))
  );
}

/** `,"personal":` and `,"commitments":`: the two members the privacy split adds. */
const SPLIT_FRAME_BYTES = ',"personal":'.length + ',"commitments":'.length;

/**
 * {@link recordBytes} of a record as the privacy split leaves it: normalize()'s own members, then
 * `personal` and `commitments` (texts), nothing else. The same sum, without walking its keys;
 * a record whose actor id is not a text or null (a pseudonym function that returned something
 * else) is measured by {@link recordBytes}.
 *
 * @example
 * splitRecordBytes(record) === Buffer.byteLength(JSON.stringify(record)); // true for such a record
 */
export function splitRecordBytes(record: AuditRecord): number {
  if (typeof record.userId !== 'string' && record.userId !== null) return recordBytes(record);
  return normalizedRecordBytes(record) + SPLIT_FRAME_BYTES + textBytes(record.personal as string) + textBytes(record.commitments as string);
}

function fieldBytes(value: string | null): number {
  return value === null ? 4 : textBytes(value);
}

/**
 * The length of text JSON writes as it is, between quotes, one byte a character (printable ASCII
 * but `"` and `\`), or -1 for other text. A loop, not a regex: cheaper on the short fixed fields.
 */
function plainBytes(value: string): number {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return -1;
  }
  return value.length;
}

/**
 * The bytes of `value` as a JSON string, quotes included. Printable ASCII is counted here (`"` and
 * `\` written with a backslash before them: a `personal` text, JSON within JSON, holds many);
 * other text is serialized to be measured.
 */
function textBytes(value: string): number {
  let escaped = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return Buffer.byteLength(JSON.stringify(value));
    if (c === 0x22 || c === 0x5c) escaped += 1;
  }
  return value.length + escaped + 2;
}

/** The slow, sure way, for a record whose fields are not all text (one that did not come from normalize()). */
function serializedBytes(record: AuditRecord): number {
  const { changes, metadata } = payloadJson(record);
  const fixed = Buffer.byteLength(JSON.stringify({ ...record, changes: null, metadata: null }));
  // Each payload stands where `null` (4 bytes) stood in `fixed`.
  return fixed + (changes === null ? 0 : Buffer.byteLength(changes) - 4) + (metadata === null ? 0 : Buffer.byteLength(metadata) - 4);
}

function stringify(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}
