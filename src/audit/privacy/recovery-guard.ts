import { type KeyObject } from 'node:crypto';
import { type AuditRecord } from '../audit-entry';
import { type RefusedRecord } from '../quarantine/isolate-refused';
import { heldBackByErasure } from './replay-guard';

/** The code under which the recovery quarantines an entry whose subject was erased since it was made. */
export const SUBJECT_ERASED_CODE = 'subject_erased';

/**
 * Splits a recovery batch (the ring's, or the spool's) as `audit:replay` would: entries whose
 * subject was erased after they were made are held back, each with an error coded
 * {@link SUBJECT_ERASED_CODE} for the quarantine; the others are kept for the insert. `keys`: the
 * module's own (the pseudonym key, else the entry keys). See docs/PRIVACY.md.
 *
 * @example
 * const { keep, held } = await splitErased(query, '"audit_log"', records, [pseudonymKey]);
 * await quarantine.put(held);
 * await writer.insert(keep);
 */
export async function splitErased(
  query: (sql: string, parameters: unknown[]) => Promise<Record<string, unknown>[]>,
  table: string,
  records: AuditRecord[],
  keys: readonly KeyObject[],
): Promise<{ keep: AuditRecord[]; held: RefusedRecord<AuditRecord>[] }> {
  const heldBack = await heldBackByErasure(query, table, records, keys);
  if (heldBack.length === 0) return { keep: records, held: [] };
  const reasons = new Map(heldBack.map((h) => [h.id, h.reason]));
  return {
    keep: records.filter((r) => !reasons.has(r.id)),
    held: records
      .filter((r) => reasons.has(r.id))
      .map((record) => ({ record, error: Object.assign(new Error(reasons.get(record.id)), { code: SUBJECT_ERASED_CODE }) })),
  };
}
