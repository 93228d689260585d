import { type KeyObject } from 'node:crypto';
import { type AuditRecord } from '../audit-entry';
import { canonicalEntityId } from '../entity-id';
import { uuidv7Time } from '../uuidv7';
import { ERASURE_ACTION, keyFingerprint, subjectPseudonym } from './erasure';
import { isSubjectPseudonym, retiredErasures, rowSubjects, sealBeside } from './erasure-subjects';

const YEAR_1 = Date.parse('0001-01-01T00:00:00Z');
const YEAR_10000 = Date.parse('+010000-01-01T00:00:00Z');

/** What `audit:replay` holds back: a record's id, and the erasure that concerns it. */
export interface HeldBack {
  id: string;
  reason: string;
}

/** An erasure as the guard reads it: its entry in the table (with the key's fingerprint), or retired (without). */
type ErasureSeen = {
  subject: string | null;
  erasure: string | null;
  /** The key's fingerprint; `undefined` for a retired erasure (its checkpoint does not carry it). */
  fingerprint: string | null | undefined;
  at: number;
};

/**
 * The records of a replay that must not be inserted, because their subject was erased after
 * they were made: inserted, they would bring the erased values back. A record already in the
 * table is never held back (its insert does nothing). An erasure entry records a fingerprint of
 * the key that made its subject's pseudonym: under one of `keys` (the pseudonym key, or the entry
 * keys) a record is held back when that erasure, made after it, names its user (as stored, or as
 * `pseudonymizeUserId` stores it) or its entity. An erasure under none of `keys` (or from before
 * fingerprints, or whose subject is no pseudonym) cannot tell whose: every record with personal
 * values made before it is held back, as without keys. Erasures whose entries retention removed
 * are read from the checkpoints: matched under each of `keys` (they carry no fingerprint), and,
 * without keys, holding back every record made before them. One query for the erasures made
 * since the oldest record, two for the checkpoints', and only when there is one, one for the
 * records already present. See docs/PRIVACY.md.
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
  const personal = records.filter(hasPersonalValues);
  if (personal.length === 0) return [];
  const oldest = personal.reduce((min, r) => Math.min(min, madeAt(r)), Infinity);
  // A time PostgreSQL cannot take (the table holds years 1 to 9999 only): every erasure is read.
  const since = oldest >= YEAR_1 && oldest < YEAR_10000 ? new Date(oldest).toISOString() : '-infinity';
  const inTable = (
    (await query(
      `SELECT changes -> 'erasure' ->> 'subject' AS subject, changes -> 'erasure' ->> 'id' AS erasure,
       changes -> 'erasure' ->> 'keyFingerprint' AS fingerprint, occurred_at
     FROM ${table} WHERE action = $1 AND occurred_at >= $2::timestamptz`,
      [ERASURE_ACTION, since],
    )) as { subject: string | null; erasure: string | null; fingerprint: string | null; occurred_at: Date }[]
  ).map((e): ErasureSeen => ({ ...e, at: new Date(e.occurred_at).getTime() }));
  const listed = new Set(inTable.map((e) => e.erasure));
  const retired = (await retiredErasures(query, sealBeside(table)))
    .filter((e) => e.at >= oldest && !listed.has(e.erasure))
    .map((e): ErasureSeen => ({ ...e, fingerprint: undefined }));
  const erasures = [...inTable, ...retired];
  if (erasures.length === 0) return [];
  const present = new Set(
    ((await query(`SELECT id::text AS id FROM ${table} WHERE id = ANY($1::uuid[])`, [personal.map((r) => r.id)])) as { id: string }[]).map(
      (r) => r.id,
    ),
  );
  const byFingerprint = new Map(keys.map((key) => [keyFingerprint(key), key]));
  const keysOf = (e: ErasureSeen): readonly KeyObject[] => {
    if (e.fingerprint === undefined) return keys;
    const key = e.fingerprint === null ? undefined : byFingerprint.get(e.fingerprint);
    return key === undefined ? [] : [key];
  };
  const held: HeldBack[] = [];
  for (const record of personal) {
    if (present.has(record.id)) continue;
    const made = madeAt(record);
    const after = erasures.filter((e) => e.at >= made);
    if (after.length === 0) continue;
    const match = after.find(
      (e) => isSubjectPseudonym(e.subject) && keysOf(e).some((key) => recordSubjects(key, record).includes(e.subject as string)),
    );
    if (match) {
      held.push({ id: record.id, reason: `its subject was erased since it was written (erasure ${match.erasure ?? 'unknown'})` });
      continue;
    }
    const unknown = after.find((e) =>
      e.fingerprint === undefined ? keys.length === 0 : keysOf(e).length === 0 || !isSubjectPseudonym(e.subject),
    );
    if (unknown === undefined) continue;
    held.push({
      id: record.id,
      reason:
        keys.length === 0
          ? `erasures were made since it was written, and without the pseudonym key (AUDIT_PRIVACY_PSEUDONYM_KEY or AUDIT_INTEGRITY_ENTRY_KEY) replay cannot tell whose`
          : `erasure ${unknown.erasure ?? 'unknown'} was made since it was written under a pseudonym key not given here, or names no subject it can read, so it cannot tell whose`,
    });
  }
  return held;
}

/**
 * The subjects a record is about, as an erasure names them: its user (both forms), its entity, and
 * each entity whose change its `changes.entities` holds by a text or numeric id (as `erase()` finds
 * rows by entity), a UUID also in lower case.
 */
function recordSubjects(key: KeyObject, record: AuditRecord): string[] {
  const subjects = rowSubjects(key, record.userId, record.entityType, record.entityId);
  const entities = (record.changes as { entities?: unknown } | null)?.entities;
  for (const change of Array.isArray(entities) ? (entities as { type?: unknown; id?: unknown }[]) : []) {
    const id = typeof change?.id === 'number' ? String(change.id) : change?.id;
    if (typeof change?.type !== 'string' || typeof id !== 'string') continue;
    for (const spelling of new Set([id, canonicalEntityId(id)])) subjects.push(subjectPseudonym(key, [null, change.type, spelling]));
  }
  return subjects;
}

function hasPersonalValues(record: AuditRecord): boolean {
  return record.userId !== null || record.ip !== null || record.userAgent !== null || record.personal !== undefined;
}

/** How far apart two instances' clocks may be, for {@link madeAt}: an erasure this close after an entry still holds it back. */
const CLOCK_SKEW_MS = 60_000;

/**
 * When a record was made, as early as it can have been: the earlier of its `occurredAt` (which a
 * caller may set, or a clock running ahead may put late) and the time in its UUIDv7 id (taken when
 * the module made the entry), less {@link CLOCK_SKEW_MS} for the clocks of the instance that made it
 * and of the one that erased. Holding back too much is safe (the record stays in quarantine or in
 * its file, named); too little brings an erased value back.
 */
function madeAt(record: AuditRecord): number {
  const occurred = Date.parse(record.occurredAt);
  const idTime = uuidv7Time(record.id);
  const made = Math.min(Number.isNaN(occurred) ? Infinity : occurred, Number.isNaN(idTime) ? Infinity : idTime);
  return made === Infinity ? -Infinity : made - CLOCK_SKEW_MS;
}
