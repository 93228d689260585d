import { type KeyObject } from 'node:crypto';
import { type Client } from 'pg';
import { quoteTablePath } from '../audit-insert-sql';
import { canonicalEntityId } from '../entity-id';
import { type Anomaly } from '../integrity/verify-checks';
import { uuidv7Time } from '../uuidv7';
import { sealTableOf } from '../integrity/seal-store';
import { ERASURE_ACTION, keyFingerprint, subjectPseudonym } from './erasure';
import { isSubjectPseudonym, type RetiredErasure, retiredErasures, rowSubjects } from './erasure-subjects';
import { ERASED, parsePersonal } from './personal-values';

/** An authentic `audit_erasure` entry whose subject pseudonym one of the keys given can make. */
interface ErasureSeen {
  erasure: string;
  at: number;
  tx: bigint;
}

/**
 * Whether every row an erasure should have taken was taken (docs/PRIVACY.md, "Verification knows
 * erasure"). A row still holding personal values is named `row_not_erased` when its subject (its
 * user, its entity, or an entity whose change its `changes.entities` holds) was erased by an
 * `audit_erasure` entry, and the row was made before the
 * erasure (its UUIDv7 id's time: when the module made the entry; a caller's `occurredAt` may say
 * any time), and either
 *
 * - its transaction began writing before the erasure's did: it was open while the erasure ran
 *   (such as a caller's `record()`) and committed after it, or its values were written back (a
 *   row whose id tells no time counts as made before); or
 * - it was inserted after the erasure: an entry of the erased subject brought back past the
 *   guards of the recovery and of `audit:replay`, for example inserted by hand from its stderr
 *   line, or written by another instance's queue as the erasure ran.
 *
 * A row made after the erasure is new, even in a transaction that began before it. Erasing the
 * subject again takes a row named. Made times come from the hosts' clocks: a row made just after
 * the erasure on a host whose clock lags is named too, and one made just before it on a host
 * whose clock runs ahead, then inserted by a transaction that began after the erasure, is not.
 *
 * An erasure names its subject by a keyed pseudonym: only erasures made under one of `keys`
 * (the entry keys, or the pseudonym key) are checked; the others (and those whose subject is no
 * pseudonym) are counted in `unchecked`. A row's user is matched as stored and as
 * `pseudonymizeUserId` stores it (rows written before the option keep the raw id).
 *
 * Erasures whose entries retention removed are read from the checkpoints (`retired`): a row of
 * their subject (under any of `keys`: checkpoints carry no key fingerprint) made before one of
 * them still holding personal values is named, whatever its transaction (the checkpoint does not
 * carry the erasure's).
 *
 * @example
 * const coverage = await ErasureCoverage.load(client, 'public.audit_log', keys, forged);
 * const anomaly = coverage.judge(id, tx, text); // `text` selected with PERSONAL_CHECK_SQL
 */
export class ErasureCoverage {
  private constructor(
    private readonly keys: readonly { key: KeyObject; bySubject: Map<string, ErasureSeen[]> }[],
    /** Erasure entries made under a key not given: their rows cannot be told. */
    readonly unchecked: number,
    private readonly retired: ReadonlyMap<string, RetiredErasure[]> = new Map(),
  ) {}

  /** Reads the `audit_erasure` entries (in the caller's snapshot), leaving out the ids in `forged`. */
  static async load(
    client: Client,
    table: string,
    keys: readonly KeyObject[],
    forged: ReadonlySet<string> = new Set(),
  ): Promise<ErasureCoverage> {
    const { rows } = await client.query<{
      id: string;
      subject: string | null;
      fingerprint: string | null;
      erasure: string | null;
      at: Date;
      tx: string | null;
    }>(
      `SELECT l.id::text AS id, l.changes -> 'erasure' ->> 'subject' AS subject, l.changes -> 'erasure' ->> 'keyFingerprint' AS fingerprint,
         l.changes -> 'erasure' ->> 'id' AS erasure, l.occurred_at AS at, l.tx::text AS tx
       FROM ${quoteTablePath(table)} AS l WHERE l.action OPERATOR(pg_catalog.=) $1`,
      [ERASURE_ACTION],
    );
    const byFingerprint = new Map(keys.map((key) => [keyFingerprint(key), { key, bySubject: new Map<string, ErasureSeen[]>() }]));
    let unchecked = 0;
    for (const row of rows) {
      if (forged.has(row.id) || row.subject === null || row.tx === null || !/^[0-9]{1,20}$/.test(row.tx)) continue;
      const under = row.fingerprint === null ? undefined : byFingerprint.get(row.fingerprint);
      if (under === undefined || !isSubjectPseudonym(row.subject)) {
        unchecked += 1;
        continue;
      }
      const seen = { erasure: row.erasure ?? row.id, at: new Date(row.at).getTime(), tx: BigInt(row.tx) };
      under.bySubject.set(row.subject, [...(under.bySubject.get(row.subject) ?? []), seen]);
    }
    const listed = new Set(rows.map((row) => row.erasure ?? row.id));
    const query = async (sql: string, parameters: unknown[]) => (await client.query(sql, parameters)).rows as Record<string, unknown>[];
    const retired = new Map<string, RetiredErasure[]>();
    for (const erasure of keys.length === 0 ? [] : await retiredErasures(query, sealTableOf(table))) {
      if (!listed.has(erasure.erasure)) retired.set(erasure.subject, [...(retired.get(erasure.subject) ?? []), erasure]);
    }
    return new ErasureCoverage(
      [...byFingerprint.values()].filter((k) => k.bySubject.size > 0 || retired.size > 0),
      unchecked,
      retired,
    );
  }

  /** Judges one row from its `PERSONAL_CHECK_SQL` text (null for a row without commitments) and its transaction id. */
  judge(id: string, tx: bigint | null, text: unknown): Anomaly | null {
    if (this.keys.length === 0 || typeof text !== 'string') return null;
    const [userId, ip, userAgent, personal, , entityType, entityId, changed] = JSON.parse(text) as [
      string | null,
      string | null,
      string | null,
      string | null,
      string | null,
      string | null,
      string | null,
      unknown,
    ];
    const values = parsePersonal(personal ?? null);
    if (values === null || 'erased' in values) return null;
    if (values.values.length === 0 && [userId, ip, userAgent].every((v) => v === null || v === ERASED)) return null;
    const made = uuidv7Time(id);
    for (const { key, bySubject } of this.keys) {
      const subjects = rowSubjects(key, userId === ERASED ? null : userId, null, null);
      for (const [type, entity] of entitiesOf(entityType, entityId, changed)) subjects.push(subjectPseudonym(key, [null, type, entity]));
      for (const subject of subjects) {
        const gone = (this.retired.get(subject) ?? []).find((erasure) => made < erasure.at);
        if (gone) {
          return {
            kind: 'row_not_erased',
            row: id,
            detail: `made before erasure ${gone.erasure} of its subject (its entry retired with its month), yet it holds its personal values`,
          };
        }
        for (const erasure of bySubject.get(subject) ?? []) {
          if (tx === null) continue;
          // An id that tells no time: made before for a transaction older than the erasure's, unknown for a newer one.
          const inFlight = tx < erasure.tx && !(made >= erasure.at);
          if (!inFlight && !(tx > erasure.tx && made < erasure.at)) continue;
          return {
            kind: 'row_not_erased',
            row: id,
            detail: inFlight
              ? `its subject was erased by erasure ${erasure.erasure}, begun after this row's transaction, yet it holds its personal values (its transaction was open during the erasure, or the values were written back)`
              : `made before erasure ${erasure.erasure} of its subject and inserted after it, with its personal values`,
          };
        }
      }
    }
    return null;
  }
}

/**
 * The entities a row is about: its own, and each one whose change its `changes.entities` holds
 * (`[type, id]` pairs of text), once each; a UUID id also in lower case, as erasures name it (a row
 * an earlier version stored with the id in capitals).
 */
function entitiesOf(entityType: unknown, entityId: unknown, changed: unknown): [string, string][] {
  const pairs = [[entityType, entityId], ...(Array.isArray(changed) ? (changed as unknown[]) : [])];
  const seen = new Map<string, [string, string]>();
  for (const pair of pairs) {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') continue;
    for (const id of [pair[1], canonicalEntityId(pair[1])]) seen.set(JSON.stringify([pair[0], id]), [pair[0], id]);
  }
  return [...seen.values()];
}
