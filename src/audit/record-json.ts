import { type AuditRecord } from './audit-entry';

/** `changes` and `metadata` of a record as JSON text; `null` for a null value. */
export interface PayloadJson {
  changes: string | null;
  metadata: string | null;
}

const cache = new WeakMap<AuditRecord, PayloadJson>();

/**
 * The JSON text of a record's `changes` and `metadata`, made once per record object: normalize()
 * measures the entry with it and the writer's INSERT sends the same strings.
 *
 * @example
 * payloadJson(record).changes; // '{"title":"Supplier NDA"}'
 */
export function payloadJson(record: AuditRecord): PayloadJson {
  let json = cache.get(record);
  if (!json) {
    json = { changes: stringify(record.changes), metadata: stringify(record.metadata) };
    cache.set(record, json);
  }
  return json;
}

/**
 * The size in bytes of `JSON.stringify(record)`, from its small fixed fields and the payload
 * text already made.
 *
 * @example
 * recordBytes(record) === Buffer.byteLength(JSON.stringify(record)); // true
 */
export function recordBytes(record: AuditRecord): number {
  const { changes, metadata } = payloadJson(record);
  const fixed = Buffer.byteLength(JSON.stringify({ ...record, changes: null, metadata: null }));
  // Each payload stands where `null` (4 bytes) stood in `fixed`.
  return fixed + (changes === null ? 0 : Buffer.byteLength(changes) - 4) + (metadata === null ? 0 : Buffer.byteLength(metadata) - 4);
}

function stringify(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}
