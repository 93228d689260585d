import { createHmac, type KeyObject } from 'node:crypto';
import { type AuditEntry, type AuditRecord, storedId } from '../audit-entry';
import { buildAuditInsert } from '../audit-insert-sql';
import { SEALED_COLUMNS_SQL } from '../integrity/row-encoding';
import { AuditErasureError } from '../audit.errors';
import { legacyEntityIdSpellings } from '../entity-id';
import { uuidv7 } from '../uuidv7';
import { pseudonym } from './privacy-options';

/** The action of the entry every erasure writes. */
export const ERASURE_ACTION = 'audit_erasure';

/**
 * The size cap of an erasure entry, whatever `maxEntryBytes`: its `changes.erasure` counts the
 * rows it erased by month (at most 119 988 months, years 1 to 9999) and by archive month, and
 * names the rows of each archive by a digest, which the checks read whole; it must never be cut to
 * a preview. This fits the three maps of every month.
 *
 * @example
 * new AuditEntryNormalizer([], erasureEntryMaxBytes(options.maxEntryBytes), sign, split);
 */
export function erasureEntryMaxBytes(maxEntryBytes: number): number {
  return Math.max(maxEntryBytes, 16 * 1024 * 1024);
}

/**
 * Whose personal values to erase: a user (the actor of the rows, `user_id`) or an entity (the
 * subject of the rows). `dryRun` lists what would change and changes nothing.
 *
 * @example
 * const request: ErasureRequest = { userId: 'u-42', requestedBy: 'dpo@example.com', reason: 'GDPR Art. 17 request #118' };
 */
export interface ErasureRequest {
  userId?: string | number | bigint;
  entityType?: string;
  entityId?: string | number | bigint;
  dryRun?: boolean;
  /** Who asked (stored as the erasure entry's actor). */
  requestedBy?: string;
  /** Why (stored in the erasure entry's metadata); never put the erased value here. */
  reason?: string;
}

/** One row an erasure matched, and what became of it. */
export interface ErasedRow {
  id: string;
  occurredAt: string;
  /** `erased` (now, or in a dry run: would be), `already_erased`, or `not_erasable` (written before commitments: its values stay). */
  state: 'erased' | 'already_erased' | 'not_erasable';
}

/**
 * What an erasure did (or, dry, would do). `erased` rows had their values and salts replaced by
 * the erased marker; the entry `entryId` records it, naming the subject by `subject`, a keyed
 * pseudonym.
 *
 * @example
 * const { erased, entryId } = await auditService.erase({ userId: 'u-42' });
 */
export interface ErasureResult {
  erasureId: string;
  dryRun: boolean;
  subject: string;
  erased: number;
  alreadyErased: number;
  notErasable: number;
  rows: ErasedRow[];
  /** The `audit_erasure` entry's id; null in a dry run. */
  entryId: string | null;
  /**
   * Given only when the context counts rows in archives (`audit-erase --archive-dir`): each
   * erasure made (one per form of the user's id that had rows), with its subject as
   * `audit_log_erase` took it and its entry's row as stored (null in a dry run).
   */
  parts?: ErasurePart[];
}

/**
 * One erasure of an {@link ErasureResult}: its id, the subject's stored form it erased, and its
 * entry's sealed columns, `auth_code` and `personal` as an archive holds a row (`ARCHIVE_COLUMNS`).
 *
 * @example
 * const part: ErasurePart = { erasureId, subject: ['u-42', null, null], entry: null };
 */
export interface ErasurePart {
  erasureId: string;
  subject: ErasureSubject;
  entry: (string | null)[] | null;
}

/** What an erasure needs of its caller: a query in one open transaction, and how entries are made. */
export interface ErasureContext {
  query(sql: string, parameters: unknown[]): Promise<unknown>;
  /** `audit_log`, quoted, with its schema when it has one. */
  table: string;
  /** Makes the erasure entry: never redacted by the app's `redactKeys` (the checks read its fields). */
  normalize(entry: AuditEntry): AuditRecord;
  /** The key of the subject's pseudonym (`privacy.pseudonymKey`, else the signing entry key). */
  key: KeyObject | null;
  /** What the actor's id is stored as (`privacy.userIdPseudonym`), or null. */
  userIdPseudonym: ((id: string) => string) | null;
  /**
   * The rows of a subject's stored form that archives hold and this erasure will erase there
   * after it commits, by archive (its `month`): counted in the entry (`changes.erasure.archives`).
   */
  archived?: (subject: ErasureSubject) => Record<string, number>;
  /**
   * The same rows named, by archive: the digest of their ids (`archiveRowsDigest`), recorded
   * in the entry (`changes.erasure.archiveRows`) for each archive `archived` counts.
   */
  archivedRows?: (subject: ErasureSubject) => Record<string, string>;
}

/** A subject's id as text, at most 256 characters (as the columns store them). */
/** A request's id in the form its rows store it (see {@link storedId}), or null when it is no id. */
function idText(field: 'entityType' | 'entityId' | 'userId', value: unknown): string | null {
  if (typeof value === 'number' || typeof value === 'bigint') return storedId(field, value);
  return typeof value === 'string' && value.length > 0 ? storedId(field, value) : null;
}

/**
 * The subject of `request` as `audit_log_erase` takes it: `[user_id, entity_type, entity_id]`,
 * the user id as stored (its pseudonym when one is configured). Throws on anything else.
 *
 * @example
 * erasureSubject({ userId: 42 }, null); // ['42', null, null]
 */
export function erasureSubject(
  request: ErasureRequest,
  userIdPseudonym: ((id: string) => string) | null,
): [string | null, string | null, string | null] {
  const { userId, entityType, entityId } = request ?? {};
  if (userId !== undefined && entityType === undefined && entityId === undefined) {
    const id = idText('userId', userId);
    if (id !== null) return [userIdPseudonym ? userIdPseudonym(id) : id, null, null];
  } else if (userId === undefined && entityType !== undefined && entityId !== undefined) {
    const type = idText('entityType', entityType);
    const id = idText('entityId', entityId);
    if (type !== null && id !== null) return [null, type, id];
  }
  throw AuditErasureError.invalidSubject({ userId, entityType, entityId });
}

/**
 * Every stored form of the subject's id an erasure looks for: the form `audit_log_erase` takes
 * first, then (for a user) the raw id and its `pseudonymizeUserId` form, as {@link eraseSubject} does.
 *
 * @example
 * subjectForms({ userId: 'u-42' }, null, key); // [['u-42', null, null], ['p1:…', null, null]]
 */
export function subjectForms(request: ErasureRequest, userIdPseudonym: ((id: string) => string) | null, key: KeyObject): ErasureSubject[] {
  const subject = erasureSubject(request, userIdPseudonym);
  return [subject, ...otherForms(request, subject, key)];
}

/**
 * The subject's pseudonym as an erasure entry names it: keyed, so that it can be matched by
 * whoever holds the key (a replay, a later request) but not tried against a dictionary.
 *
 * @example
 * subjectPseudonym(key, ['u-42', null, null]); // 'p1:…'
 */
export function subjectPseudonym(key: KeyObject, [userId, entityType, entityId]: [string | null, string | null, string | null]): string {
  return userId !== null
    ? pseudonym(key, 'subject-user', userId)
    : pseudonym(key, 'subject-entity', JSON.stringify([entityType, entityId]));
}

/**
 * A short fingerprint of the key that made an erasure's subject pseudonym (an HMAC of a fixed
 * label under it; never the key): who holds keys can tell which of them made the pseudonym.
 *
 * @example
 * keyFingerprint(key); // 'Xb3k…' (16 characters)
 */
export function keyFingerprint(key: KeyObject): string {
  return createHmac('sha256', key).update('audit-erasure-key-fingerprint').digest('base64url').slice(0, 16);
}

/**
 * Erases, in the caller's open transaction, the personal values of every row of the subject
 * (`audit_log_erase`: every partition, only this change), then writes the `audit_erasure` entry
 * in the same transaction: both commit or neither does. A dry run changes and writes nothing.
 * A user's rows are looked for under each form of the id (as stored now, raw, and as
 * `pseudonymizeUserId` stores it), a UUID entity's under its lower-case form and, for rows an earlier
 * version stored as the client spelled the id, as given and in capitals: rows found under another
 * form than the stored one are erased under an erasure id and entry of their own; the result counts
 * them all and names the first.
 *
 * @example
 * import { type EntityManager } from 'typeorm';
 * await dataSource.transaction((m: EntityManager) =>
 *   eraseSubject({ query: (s, p) => m.query(s, p), table, normalize, key, userIdPseudonym: null }, { userId: 'u-42' }),
 * );
 */
export async function eraseSubject(context: ErasureContext, request: ErasureRequest): Promise<ErasureResult> {
  const subject = erasureSubject(request, context.userIdPseudonym);
  const key = context.key;
  if (!key) throw AuditErasureError.keyMissing();
  let result = await eraseStoredAs(context, request, subject, key);
  // Rows stored under another form of the id (before pseudonyms were turned on, or off; a UUID in capitals): an erasure of their own, with its entry.
  for (const earlier of otherForms(request, subject, key)) {
    const found = await eraseStoredAs(context, { ...request, dryRun: true }, earlier, key);
    const inArchives = Object.values(context.archived?.(earlier) ?? {}).some((n) => n > 0);
    const skip = request.dryRun === true || (found.erased === 0 && !inArchives);
    const done = skip ? found : await eraseStoredAs(context, request, earlier, key);
    result = {
      ...result,
      erased: result.erased + done.erased,
      alreadyErased: result.alreadyErased + done.alreadyErased,
      notErasable: result.notErasable + done.notErasable,
      rows: [...result.rows, ...done.rows],
      ...(result.parts ? { parts: [...result.parts, ...(done.parts ?? [])] } : {}),
    };
  }
  return result;
}

/**
 * The subject in the forms its rows may store it other than `subject`'s: a user's id raw, and as
 * `pseudonymizeUserId` under `key` stores it; a UUID entity id as given and in capitals (rows an
 * earlier version stored as the client spelled the id).
 */
function otherForms(request: ErasureRequest, [stored, entityType]: ErasureSubject, key: KeyObject): ErasureSubject[] {
  if (stored === null) {
    const given = typeof request.entityId === 'string' ? request.entityId : '';
    return legacyEntityIdSpellings(given).map((spelling) => [null, entityType, spelling]);
  }
  const raw = idText('userId', request.userId);
  if (raw === null) return [];
  return [...new Set([raw, pseudonym(key, 'user', raw)])].filter((form) => form !== stored).map((form) => [form, null, null]);
}

/** A subject as `audit_log_erase` takes it: `[user_id, entity_type, entity_id]`. */
export type ErasureSubject = [string | null, string | null, string | null];

async function eraseStoredAs(
  context: ErasureContext,
  request: ErasureRequest,
  subject: ErasureSubject,
  key: KeyObject,
): Promise<ErasureResult> {
  const dryRun = request.dryRun === true;
  const erasureId = uuidv7();
  const rows = (await context.query(
    `SELECT id::text AS id, occurred_at, state, pg_catalog.to_char(pg_catalog.timezone('UTC', occurred_at), 'YYYY-MM') AS month
     FROM ${functionOf(context.table)}($1, $2, $3, $4::uuid, $5)`,
    [...subject, erasureId, dryRun],
  )) as { id: string; occurred_at: Date; state: ErasedRow['state']; month?: string }[];
  const count = (state: ErasedRow['state']) => rows.filter((r) => r.state === state).length;
  // Rows erased by month of their occurred_at (UTC): an archive's offline check accounts for them by each row's month.
  const months: Record<string, number> = {};
  for (const row of rows) if (row.state === 'erased' && typeof row.month === 'string') months[row.month] = (months[row.month] ?? 0) + 1;
  const result: ErasureResult = {
    erasureId,
    dryRun,
    subject: subjectPseudonym(key, subject),
    erased: count('erased'),
    alreadyErased: count('already_erased'),
    notErasable: count('not_erasable'),
    rows: rows.map((r) => ({ id: r.id, occurredAt: new Date(r.occurred_at).toISOString(), state: r.state })),
    entryId: null,
    ...(context.archived ? { parts: [{ erasureId, subject, entry: null }] } : {}),
  };
  if (dryRun) return result;
  const archives = Object.fromEntries(Object.entries(context.archived?.(subject) ?? {}).filter(([, n]) => n > 0));
  const named = context.archivedRows?.(subject) ?? {};
  const archiveRows = Object.fromEntries(Object.keys(archives).map((month) => [month, named[month] ?? '']));
  const record = context.normalize({
    action: ERASURE_ACTION,
    entityType: ERASURE_ACTION,
    entityId: erasureId,
    userId: request.requestedBy ?? null,
    changes: {
      erasure: {
        id: erasureId,
        subject: result.subject,
        keyFingerprint: keyFingerprint(key),
        by: subject[0] !== null ? 'user' : 'entity',
        rows: result.erased,
        months,
        alreadyErased: result.alreadyErased,
        notErasable: result.notErasable,
        // Rows erased in archives once this commits (`audit-erase --archive-dir`), by archive month, and which rows (a digest of their ids).
        ...(Object.keys(archives).length > 0 ? { archives, archiveRows } : {}),
      },
    },
    metadata: request.reason === undefined ? undefined : { reason: request.reason },
  });
  const { sql, parameters } = buildAuditInsert(context.table, [record]);
  await context.query(sql, parameters);
  if (!context.archived) return { ...result, entryId: record.id };
  // The entry as stored (its tx and recorded_at are the server's): archives carry it whole.
  const [stored] = (await context.query(
    `SELECT ${SEALED_COLUMNS_SQL}, l.auth_code AS c15, l.personal AS c16 FROM ${context.table} AS l WHERE l.id = $1::uuid`,
    [record.id],
  )) as Record<string, string | null>[];
  const entry = Array.from({ length: 17 }, (_, i) => stored[`c${i}`] ?? null);
  return { ...result, entryId: record.id, parts: [{ erasureId, subject, entry }] };
}

/** `"schema"."audit_log"` → `"schema".audit_log_erase`: the function beside the table. */
function functionOf(table: string): string {
  const dot = table.lastIndexOf('".');
  return dot < 0 ? 'audit_log_erase' : `${table.slice(0, dot + 1)}.audit_log_erase`;
}
