import { compileRedactor, safeString, toJsonSafe } from './json-safe';
import { storableOccurredAt, withOriginalOccurredAt } from './occurred-at';
import { userIdText } from './user-id';
import { uuidv7 } from './uuidv7';

/** Outcome of the audited action. */
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
}

/** Marker that replaces `changes` or `metadata` when an entry exceeds `maxEntryBytes`. */
export interface TruncatedMarker {
  _truncated: true;
  originalBytes: number;
  preview: string;
}

const TEXT_LIMITS = { action: 128, entityType: 128, entityId: 256, userId: 256, ip: 64, userAgent: 512, requestId: 128 };

/** Turns caller input into {@link AuditRecord}s: ids, timestamps, redaction and the size cap. */
export class AuditEntryNormalizer {
  private readonly isRedacted: (key: string) => boolean;

  constructor(
    redactKeys: readonly string[],
    private readonly maxEntryBytes: number,
  ) {
    this.isRedacted = compileRedactor(redactKeys);
  }

  /** Never throws; returns the record and its serialized size in bytes. */
  normalize(entry: AuditEntry): { record: AuditRecord; bytes: number } {
    const source = (entry ?? {}) as Partial<AuditEntry>;
    const occurredAt = storableOccurredAt(source.occurredAt, new Date());
    const metadata = source.metadata === undefined ? null : toJsonSafe(source.metadata, this.isRedacted);
    const record: AuditRecord = {
      id: uuidv7(),
      occurredAt: occurredAt.iso,
      // Replay refuses a record without an action: an empty one would be stored but never replayed.
      action: text(source.action, TEXT_LIMITS.action) || 'unknown',
      entityType: text(source.entityType, TEXT_LIMITS.entityType),
      entityId: text(source.entityId, TEXT_LIMITS.entityId),
      userId: userIdText(source.userId, TEXT_LIMITS.userId),
      outcome: source.outcome === 'failure' ? 'failure' : 'success',
      ip: text(source.ip, TEXT_LIMITS.ip),
      userAgent: text(source.userAgent, TEXT_LIMITS.userAgent),
      requestId: text(source.requestId, TEXT_LIMITS.requestId),
      changes: source.changes === undefined ? null : toJsonSafe(source.changes, this.isRedacted),
      metadata: occurredAt.original === undefined ? metadata : withOriginalOccurredAt(metadata, occurredAt.original),
    };
    return this.capSize(record);
  }

  private capSize(record: AuditRecord): { record: AuditRecord; bytes: number } {
    let bytes = Buffer.byteLength(JSON.stringify(record));
    if (bytes <= this.maxEntryBytes) return { record, bytes };
    // A preview a quarter of the budget each leaves room for the fixed fields (at most ~1.3 KiB).
    const previewChars = Math.floor(this.maxEntryBytes / 4 / 4);
    const capped = { ...record, changes: truncate(record.changes, previewChars), metadata: truncate(record.metadata, previewChars) };
    bytes = Buffer.byteLength(JSON.stringify(capped));
    return { record: capped, bytes };
  }
}

function truncate(value: unknown, previewChars: number): TruncatedMarker | unknown {
  if (value === null) return null;
  const json = JSON.stringify(value);
  if (json.length <= previewChars) return value;
  return { _truncated: true, originalBytes: Buffer.byteLength(json), preview: safeString(json.slice(0, previewChars)) };
}

function text(value: unknown, limit: number): string | null {
  if (value === undefined || value === null) return null;
  const raw =
    typeof value === 'string'
      ? value
      : typeof value === 'number' || typeof value === 'bigint'
        ? String(value)
        : JSON.stringify(toJsonSafe(value, () => false));
  const cleaned = safeString(raw);
  return cleaned.length > limit ? safeString(cleaned.slice(0, limit)) : cleaned;
}
