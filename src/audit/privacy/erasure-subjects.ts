import { type KeyObject } from 'node:crypto';
import { type RetainedErasures } from '../lifecycle/checkpoint-erasures';
import { canonicalEntityId } from '../entity-id';
import { uuidv7Time } from '../uuidv7';
import { subjectPseudonym } from './erasure';
import { pseudonym } from './privacy-options';

const SUBJECT_PSEUDONYM = /^p1:[A-Za-z0-9_-]{43}$/;

/**
 * Whether an erasure entry's `subject` is a pseudonym the checks can match: anything else (a
 * value redacted by an older version, or changed) cannot tell whose rows it took.
 *
 * @example
 * isSubjectPseudonym('[REDACTED]'); // false
 */
export function isSubjectPseudonym(value: unknown): value is string {
  return typeof value === 'string' && SUBJECT_PSEUDONYM.test(value);
}

/**
 * The subject pseudonyms under `key` an erasure of a row's user or entity would name: its user
 * id as stored, and as `pseudonymizeUserId` under this key stores it (a row written before the
 * option was turned on keeps the raw id), and its entity (a UUID also in lower case, as erasures name it).
 *
 * @example
 * rowSubjects(key, 'u-42', 'Profile', 'p-1'); // three 'p1:…' pseudonyms
 */
export function rowSubjects(key: KeyObject, userId: string | null, entityType: string | null, entityId: string | null): string[] {
  const subjects: string[] = [];
  if (userId !== null) {
    subjects.push(subjectPseudonym(key, [userId, null, null]));
    if (!userId.startsWith('p1:')) subjects.push(subjectPseudonym(key, [pseudonym(key, 'user', userId), null, null]));
  }
  if (entityType !== null && entityId !== null) {
    subjects.push(subjectPseudonym(key, [null, entityType, entityId]));
    // A row an earlier version stored with a UUID in capitals: erasures now name its lower-case form.
    const canonical = canonicalEntityId(entityId);
    if (canonical !== entityId) subjects.push(subjectPseudonym(key, [null, entityType, canonical]));
  }
  return subjects;
}

/**
 * An erasure whose `audit_erasure` entry left the table with its month, as the retention
 * checkpoint carried it forward: its id, its subject's pseudonym, and when it was made (the time
 * of its UUIDv7 id; `Infinity`, after everything, for an id that tells none). The checkpoint does
 * not carry the key fingerprint: the checks try each key they are given.
 */
export interface RetiredErasure {
  erasure: string;
  subject: string;
  at: number;
}

/**
 * The erasures the retention checkpoints of `sealTable` (quoted SQL name) carried forward, those
 * with a subject pseudonym only. Nothing when the table is not there, or not readable by this
 * role (a trail without sealing need not grant it): no checkpoint can exist without sealing.
 *
 * @example
 * const retired = await retiredErasures(query, '"public".audit_seal');
 */
export async function retiredErasures(
  query: (sql: string, parameters: unknown[]) => Promise<Record<string, unknown>[]>,
  sealTable: string,
): Promise<RetiredErasure[]> {
  const [access] = await query(`SELECT COALESCE(pg_catalog.has_table_privilege(pg_catalog.to_regclass($1), 'SELECT'), false) AS readable`, [
    sealTable,
  ]);
  if (access?.readable !== true) return [];
  const rows = (await query(
    `SELECT s.retention_erasures AS erasures FROM ${sealTable} AS s
     WHERE s.retention_month IS NOT NULL AND s.retention_erasures IS NOT NULL ORDER BY s.seq`,
    [],
  )) as { erasures: string }[];
  const retired: RetiredErasure[] = [];
  for (const row of rows) {
    let value: Partial<RetainedErasures> | null = null;
    try {
      value = JSON.parse(row.erasures) as Partial<RetainedErasures>;
    } catch {
      // Changed by hand: audit-verify names the checkpoint by its hash.
    }
    for (const [erasure, entry] of Object.entries(value?.entries ?? {})) {
      if (!isSubjectPseudonym(entry?.subject)) continue;
      const at = uuidv7Time(erasure);
      retired.push({ erasure, subject: entry.subject, at: Number.isNaN(at) ? Infinity : at });
    }
  }
  return retired;
}

/**
 * The audit table's `audit_seal`, beside it: `"schema"."audit_log"` → `"schema".audit_seal`.
 *
 * @example
 * sealBeside('"public"."audit_log"'); // '"public".audit_seal'
 */
export function sealBeside(table: string): string {
  const dot = table.lastIndexOf('".');
  return dot < 0 ? 'audit_seal' : `${table.slice(0, dot + 1)}.audit_seal`;
}
