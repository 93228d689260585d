import { type KeyObject } from 'node:crypto';
import { type AuditRecord } from '../audit-entry';
import { ERASURE_ACTION, subjectPseudonym } from './erasure';

/** What `audit:replay` holds back: a record's id, and the erasure that concerns it. */
export interface HeldBack {
  id: string;
  reason: string;
}

/**
 * The records of a replay that must not be inserted, because their subject was erased after
 * they were made: inserted, they would bring the erased values back. A record already in the
 * table is never held back (its insert does nothing). With `keys` (the pseudonym key, or the
 * entry keys), a record is held back when an `audit_erasure` entry made after it names its user
 * or its entity; without keys the subject cannot be told, so every record with personal values
 * made before any erasure is held back. See docs/PRIVACY.md.
 *
 * @example
 * import { type Client } from 'pg';
 * const query = async (sql: string, p: unknown[]) => (await (client as Client).query(sql, p)).rows;
 * const held = await heldBackByErasure(query, '"audit_log"', records, keys);
 */
export async function heldBackByErasure(
  query: (sql: string, parameters: unknown[]) => Promise<Record<string, unknown>[]>,
  table: string,
  records: readonly AuditRecord[],
  keys: readonly KeyObject[],
): Promise<HeldBack[]> {
  const erasures = (await query(
    `SELECT changes -> 'erasure' ->> 'subject' AS subject, changes -> 'erasure' ->> 'id' AS erasure, occurred_at FROM ${table} WHERE action = $1`,
    [ERASURE_ACTION],
  )) as { subject: string | null; erasure: string | null; occurred_at: Date }[];
  if (erasures.length === 0 || records.length === 0) return [];
  const present = new Set(
    ((await query(`SELECT id::text AS id FROM ${table} WHERE id = ANY($1::uuid[])`, [records.map((r) => r.id)])) as { id: string }[]).map(
      (r) => r.id,
    ),
  );
  const held: HeldBack[] = [];
  for (const record of records) {
    if (present.has(record.id) || !hasPersonalValues(record)) continue;
    const after = erasures.filter((e) => new Date(e.occurred_at).getTime() >= Date.parse(record.occurredAt));
    if (after.length === 0) continue;
    if (keys.length === 0) {
      held.push({
        id: record.id,
        reason: `erasures were made since it was written, and without the pseudonym key (AUDIT_PRIVACY_PSEUDONYM_KEY or AUDIT_INTEGRITY_ENTRY_KEY) replay cannot tell whose`,
      });
      continue;
    }
    const subjects = new Set<string>();
    for (const key of keys) {
      if (record.userId !== null) subjects.add(subjectPseudonym(key, [record.userId, null, null]));
      if (record.entityType !== null && record.entityId !== null)
        subjects.add(subjectPseudonym(key, [null, record.entityType, record.entityId]));
    }
    const match = after.find((e) => e.subject !== null && subjects.has(e.subject));
    if (match) held.push({ id: record.id, reason: `its subject was erased since it was written (erasure ${match.erasure ?? 'unknown'})` });
  }
  return held;
}

function hasPersonalValues(record: AuditRecord): boolean {
  return record.userId !== null || record.ip !== null || record.userAgent !== null || record.personal !== undefined;
}
