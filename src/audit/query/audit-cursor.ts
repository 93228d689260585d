import { AuditQueryError } from '../audit.errors';

/** Where a page ended: the last row's `occurred_at` in microseconds since the epoch, and its id. */
export interface AuditCursorKey {
  occurredUs: bigint;
  id: string;
}

const VERSION = 'v1';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// Years 1 to 9999 in microseconds since 1970: the instants both ISO 8601 and PostgreSQL spell plainly.
const MIN_US = -62_135_596_800_000_000n;
const MAX_US = 253_402_300_799_999_999n;

/**
 * The opaque cursor of the next page: base64url of the last row's key, exact to the microsecond
 * so that rows sharing a millisecond are neither repeated nor skipped.
 *
 * @example
 * encodeAuditCursor({ occurredUs: 1764300000123456n, id: '019ac5f0-8a1e-7000-9f3c-2b1d4e5f6a7b' }); // 'djE6MTc2NDMw…'
 */
export function encodeAuditCursor(key: AuditCursorKey): string {
  return Buffer.from(`${VERSION}:${key.occurredUs}:${key.id}`).toString('base64url');
}

/**
 * Reads a cursor made by {@link encodeAuditCursor}; anything else is an {@link AuditQueryError}
 * (a 400 over HTTP) naming the `cursor` parameter.
 *
 * @example
 * decodeAuditCursor(page.nextCursor!).id;
 */
export function decodeAuditCursor(cursor: unknown): AuditCursorKey {
  const expected = 'a cursor returned as nextCursor by an earlier page';
  if (typeof cursor !== 'string' || cursor.length > 200 || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw AuditQueryError.invalid('cursor', expected, cursor);
  }
  const [version, us, id, ...rest] = Buffer.from(cursor, 'base64url').toString('latin1').split(':');
  if (version !== VERSION || rest.length > 0 || !/^-?\d{1,19}$/.test(us ?? '') || !UUID.test(id ?? '')) {
    throw AuditQueryError.invalid('cursor', expected, cursor);
  }
  const occurredUs = BigInt(us);
  if (occurredUs < MIN_US || occurredUs > MAX_US) throw AuditQueryError.invalid('cursor', expected, cursor);
  return { occurredUs, id };
}

/**
 * The key's instant as ISO 8601 text with microseconds, which PostgreSQL reads exactly as a
 * timestamptz (a JavaScript `Date` would round it to the millisecond).
 *
 * @example
 * cursorInstant({ occurredUs: 1764300000123456n, id }); // '2025-11-28T03:20:00.123456Z'
 */
export function cursorInstant(key: AuditCursorKey): string {
  const ms = key.occurredUs / 1000n - (key.occurredUs % 1000n < 0n ? 1n : 0n);
  const micros = key.occurredUs - ms * 1000n;
  const iso = new Date(Number(ms)).toISOString();
  return iso.replace(/Z$/, `${String(micros).padStart(3, '0')}Z`);
}
