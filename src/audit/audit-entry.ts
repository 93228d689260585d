import { diffsBytes, diffsOf, type DiffsPart, fitDiffs, joinDiffs, partChanges } from './diffs/entry-diffs';
import { canonicalEntityId } from './entity-id';
import { compileRedactor, convertJsonSafe, type JsonSafeResult, safeString, toJsonSafe, UNREADABLE } from './json-safe';
import { isoTime, storableOccurredAt, withOriginalOccurredAt } from './occurred-at';
import { normalizedRecordBytes, recordBytes, splitRecordBytes } from './record-json';
import { userIdText } from './user-id';
import { uuidv7 } from './uuidv7';

/**
 * Outcome of the audited action.
 *
 * @example
 * const outcome: AuditOutcome = 'failure';
 * void audit.log({ action: 'nda_signed', outcome, metadata: { reason: 'expired' } });
 */
export type AuditOutcome = 'success' | 'failure';

/**
 * What a caller hands to `AuditService.log()`. Only `action` is required.
 *
 * @example
 * auditService.log({ action: 'nda_created', entityType: 'NDA', entityId: nda.id, userId: 'u-42',
 *   changes: { title: nda.title } });
 */
export interface AuditEntry {
  action: string;
  entityType?: string | null;
  entityId?: string | number | null;
  /** A string, number or bigint; anything else (an object, say) is stored as null, with a warning. */
  userId?: string | number | bigint | null;
  outcome?: AuditOutcome;
  ip?: string | null;
  userAgent?: string | null;
  requestId?: string | null;
  /** What changed; redacted and size-capped before it reaches any sink. */
  changes?: unknown;
  /** Anything else worth keeping (status code, duration…); redacted and size-capped too. */
  metadata?: unknown;
  /**
   * When the action happened; defaults to the time `log()` was called. A date outside the years
   * 0001–9999 (or an invalid one) is stored as the time of `log()`, and the value given is kept in
   * `metadata._auditOriginalOccurredAt`.
   */
  occurredAt?: Date;
}

/**
 * A normalized entry: what is inserted into `audit_log`, printed on stderr and kept in the ring.
 * Every field is JSON-safe, so a stderr line can be replayed into the table as it is.
 *
 * @example
 * const line = JSON.parse(stderrLine) as { entry: AuditRecord };
 * line.entry.id; // the UUIDv7 the row will have
 */
export interface AuditRecord {
  id: string;
  occurredAt: string;
  action: string;
  entityType: string | null;
  entityId: string | null;
  userId: string | null;
  outcome: AuditOutcome;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  changes: unknown;
  metadata: unknown;
  /**
   * The entry's authentication code (`v1:<key id>:<mac>`), made when the entry is created, with
   * integrity's entry keys set; absent without them. It travels with the entry through every sink.
   */
  authCode?: string;
  /**
   * With the `privacy` option: the row's personal values kept apart (JSON text: its random salt
   * and the values of its `personalData` paths, which `changes` and `metadata` then lack), and
   * one commitment per personal value, actor fields included (docs/PRIVACY.md).
   */
  personal?: string;
  commitments?: string;
}

/**
 * Marker that replaces `changes` or `metadata` when an entry exceeds `maxEntryBytes`. Without
 * `preview` when, with the `privacy` option, the personal values kept apart did not fit either: a
 * preview of the payload could hold one of them outside what an erasure takes.
 */
export interface TruncatedMarker {
  _truncated: true;
  originalBytes: number;
  preview?: string;
}

/** What {@link AuditEntryNormalizer.normalize} made of an entry. */
export interface NormalizedEntry {
  record: AuditRecord;
  /** Serialized size of `record` in bytes. */
  bytes: number;
  /** Values of the entry that could not be read (a getter or a proxy trap threw): each is `[Unreadable]` in `record`. */
  faults: number;
}

/** Characters an entry code (`v1:<key id>:<base64url>`) is made of. */
const CODE_TEXT = /^[A-Za-z0-9._:-]*$/;
const TEXT_LIMITS = { action: 128, entityType: 128, entityId: 256, userId: 256, ip: 64, userAgent: 512, requestId: 128 };
/** A caller's id or occurredAt that is an object is only a witness: read this much of it at most. */
const SMALL_BUDGET_BYTES = 1024;

const NOTHING_REDACTED = (): boolean => false;

/** Turns caller input into {@link AuditRecord}s: ids, timestamps, redaction and the size cap. */
export class AuditEntryNormalizer {
  private readonly isRedacted: (key: string) => boolean;

  constructor(
    redactKeys: readonly string[],
    private readonly maxEntryBytes: number,
    /** Makes the entry's authentication code (integrity's entry keys): called once, on the finished record. */
    private readonly sign?: (record: AuditRecord) => string,
    /** Keeps the personal values apart and commits to them (the `privacy` option): called before the size cap. */
    private readonly personal?: (record: AuditRecord) => void,
  ) {
    this.isRedacted = compileRedactor(redactKeys);
  }

  /**
   * Never throws, and costs time linear in `maxEntryBytes` whatever the entry holds. A value that
   * cannot be read becomes `[Unreadable]` and is counted in `faults`; the rest of the entry is kept.
   * `redact: false` is for the module's own entries (`audit_erasure`): the app's `redactKeys`
   * name the app's fields, and must not blind the checks that read the module's.
   */
  normalize(entry: AuditEntry, { redact = true }: { redact?: boolean } = {}): NormalizedEntry {
    let faults = 0;
    const field = (key: keyof AuditEntry): unknown => {
      try {
        return (entry ?? {})[key];
      } catch {
        faults += 1;
        return UNREADABLE;
      }
    };
    const now = Date.now();
    let occurredAt: { iso: string; original?: string };
    try {
      occurredAt = storableOccurredAt(field('occurredAt'), now);
    } catch {
      faults += 1;
      occurredAt = { iso: isoTime(now), original: UNREADABLE };
    }
    // The module's entity diffs are converted and cut apart from the rest of `changes`: a large body never takes them along.
    const given = partChanges(field('changes'));
    const changes = this.payload(given.rest, redact);
    const diffs = given.diffs && this.payload(given.diffs, redact);
    const metadata = this.payload(field('metadata'), redact);
    faults += changes.faults + metadata.faults + (diffs?.faults ?? 0);
    const record: AuditRecord = {
      id: uuidv7(),
      occurredAt: occurredAt.iso,
      // Replay refuses a record without an action: an empty one would be stored but never replayed.
      action: text(field('action'), TEXT_LIMITS.action) || 'unknown',
      entityType: text(field('entityType'), TEXT_LIMITS.entityType),
      entityId: entityIdText(field('entityId')),
      userId: userIdText(field('userId'), TEXT_LIMITS.userId),
      outcome: field('outcome') === 'failure' ? 'failure' : 'success',
      ip: text(field('ip'), TEXT_LIMITS.ip),
      userAgent: text(field('userAgent'), TEXT_LIMITS.userAgent),
      requestId: text(field('requestId'), TEXT_LIMITS.requestId),
      changes: joinDiffs(changes.value, diffs?.value as DiffsPart | undefined),
      metadata: occurredAt.original === undefined ? metadata.value : withOriginalOccurredAt(metadata.value, occurredAt.original),
    };
    // With `privacy`, the record as it was before its personal values were taken out: a cut record is split again from it.
    const unsplit = this.personal ? { ...record } : record;
    this.personal?.(record);
    let capped = this.capSize(record, unsplit, changes, metadata, diffs !== undefined);
    if (this.personal && capped.bytes > this.maxEntryBytes)
      capped = this.capPersonal(unsplit, changes, metadata, diffs !== undefined, this.personal);
    if (!this.sign) return { ...capped, faults };
    const code = this.sign(capped.record);
    capped.record.authCode = code;
    // The code is the last member, `,"authCode":"…"`, and (v1) text JSON writes as it is.
    const bytes = CODE_TEXT.test(code) ? capped.bytes + code.length + 14 : recordBytes(capped.record);
    return { record: capped.record, bytes, faults };
  }

  /** Each of `changes` and `metadata` may read up to `maxEntryBytes`: a large one cannot starve the other. */
  private payload(value: unknown, redact: boolean): JsonSafeResult {
    if (value === undefined) return { value: null, complete: true, bytes: 4, faults: 0 };
    // Entity diffs were converted when captured: kept as they are, unless the privacy split may take values out of them.
    return convertJsonSafe(value, redact ? this.isRedacted : NOTHING_REDACTED, this.maxEntryBytes, false, !this.personal);
  }

  /**
   * An entry over `maxEntryBytes`: the rest of `changes` (the body, a caller's values) and
   * `metadata` become markers with a preview, each within a quarter of what the entity diffs leave
   * of the budget. The diffs keep their own half whole; past it, their largest values are cut
   * (each change keeps its names), and only changes whose names alone do not fit are left out and
   * counted in `entitiesOmitted` (with `privacy`, the record is then split again).
   */
  private capSize(
    record: AuditRecord,
    unsplit: AuditRecord,
    changes: JsonSafeResult,
    metadata: JsonSafeResult,
    hasDiffs: boolean,
  ): { record: AuditRecord; bytes: number } {
    // The privacy split adds members; without it the record has exactly normalize()'s own.
    const measure = this.personal ? splitRecordBytes : normalizedRecordBytes;
    let bytes = measure(record);
    if (bytes <= this.maxEntryBytes && changes.complete && metadata.complete) return { record, bytes };
    const source = hasDiffs ? this.withDiffsFitted(record, unsplit) : record;
    const { rest, diffs } = hasDiffs ? diffsOf(source.changes) : { rest: source.changes, diffs: undefined };
    // A preview a quarter of what the diffs leave each leaves room for the fixed fields (at most ~1.3 KiB).
    const previewChars = Math.floor((this.maxEntryBytes - diffsBytes(diffs)) / 4 / 4);
    const capped = {
      ...source,
      changes: joinDiffs(truncate(rest, changes, previewChars), diffs),
      metadata: truncate(source.metadata, metadata, previewChars),
    };
    bytes = measure(capped);
    return { record: capped, bytes };
  }

  /** The record with its entity diffs cut to half of `maxEntryBytes` (measured before the split of personal values), or as it is when they fit. */
  private withDiffsFitted(record: AuditRecord, unsplit: AuditRecord): AuditRecord {
    const { rest, diffs } = diffsOf(unsplit.changes);
    const share = Math.floor(this.maxEntryBytes / 2);
    if (!diffs || diffsBytes(diffs) <= share) return record;
    const fitted: AuditRecord = { ...unsplit, changes: joinDiffs(rest, fitDiffs(diffs, share)) };
    if (!this.personal) return fitted;
    this.personal(fitted);
    return fitted;
  }

  /**
   * With the `privacy` option, an entry still over `maxEntryBytes` once `changes` and `metadata`
   * are cut: its personal values (and their commitments) are what is large. Both payloads become
   * markers of their size alone, with no preview that could hold a personal value, and the split
   * runs again, from the record as it was before it, on the record without them: only the actor's
   * values, and those of the entity diffs, which keep their half, are kept apart. When the diffs'
   * values are still too large, the diffs too are left out and counted in `entitiesOmitted`.
   */
  private capPersonal(
    unsplit: AuditRecord,
    changes: JsonSafeResult,
    metadata: JsonSafeResult,
    hasDiffs: boolean,
    splitPersonal: (record: AuditRecord) => void,
  ): { record: AuditRecord; bytes: number } {
    const { rest, diffs } = hasDiffs ? diffsOf(unsplit.changes) : { rest: unsplit.changes, diffs: undefined };
    const withMarkers = (kept: DiffsPart | undefined): { record: AuditRecord; bytes: number } => {
      const record: AuditRecord = {
        ...unsplit,
        changes: joinDiffs(isEmptyObject(rest) ? rest : sizeMarker(rest, changes), kept),
        metadata: sizeMarker(unsplit.metadata, metadata),
      };
      splitPersonal(record);
      return { record, bytes: recordBytes(record) };
    };
    if (!diffs) return withMarkers(undefined);
    const capped = withMarkers(fitDiffs(diffs, Math.floor(this.maxEntryBytes / 2)));
    return capped.bytes <= this.maxEntryBytes ? capped : withMarkers(fitDiffs(diffs, 0));
  }
}

function isEmptyObject(value: unknown): boolean {
  return value !== null && typeof value === 'object' && Object.keys(value).length === 0;
}

/** A marker of a payload's size alone, without preview; null for none. */
function sizeMarker(value: unknown, conversion: JsonSafeResult): TruncatedMarker | null {
  return value === null ? null : { _truncated: true, originalBytes: conversion.bytes };
}

/** The value, or a marker with its size (at least: a value cut short is measured as far as it was read). */
function truncate(value: unknown, conversion: JsonSafeResult, previewChars: number): TruncatedMarker | unknown {
  if (value === null) return null;
  const json = JSON.stringify(value);
  if (json.length <= previewChars && conversion.complete) return value;
  const originalBytes = conversion.complete ? Buffer.byteLength(json) : Math.max(conversion.bytes, Buffer.byteLength(json));
  return { _truncated: true, originalBytes, preview: safeString(json.slice(0, previewChars)) };
}

/**
 * An id as a row stores it (`entityType`, `entityId`, `userId`): cleaned of what PostgreSQL's text
 * refuses and cut to its column's limit, as `normalize()` does, a UUID entity id in lower case;
 * null for a value that is not an id.
 * An erasure finds rows by this form.
 *
 * @example
 * storedId('entityId', 'p-\u0000-1'); // 'p-\uFFFD-1' (the NUL replaced as safeString replaces it)
 */
export function storedId(field: 'entityType' | 'entityId' | 'userId', value: string | number | bigint): string | null {
  if (field === 'entityId') return entityIdText(value);
  return field === 'userId' ? userIdText(value, TEXT_LIMITS.userId) : text(value, TEXT_LIMITS[field]);
}

/** A UUID entity id in its lower-case form, whatever case the caller wrote it in (see {@link canonicalEntityId}). */
function entityIdText(value: unknown): string | null {
  const stored = text(value, TEXT_LIMITS.entityId);
  return stored === null ? null : canonicalEntityId(stored);
}

function text(value: unknown, limit: number): string | null {
  if (value === undefined || value === null) return null;
  const raw =
    typeof value === 'string'
      ? value
      : typeof value === 'number' || typeof value === 'bigint'
        ? String(value)
        : JSON.stringify(toJsonSafe(value, () => false, SMALL_BUDGET_BYTES));
  const cleaned = safeString(raw.length > limit ? raw.slice(0, limit) : raw);
  return cleaned;
}
