import { AuditQueryError } from '../audit.errors';

/** An instant PostgreSQL holds beyond every date: `occurred_at` may be stored so. */
export type AuditInfinity = 'infinity' | '-infinity';

/**
 * Where a page ended: the last row's `occurred_at` in microseconds since the epoch (or
 * PostgreSQL's `infinity` / `-infinity`), and its id.
 */
export interface AuditCursorKey {
  occurredUs: bigint | AuditInfinity;
  id: string;
}

const VERSION = 'v1';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// PostgreSQL's finite timestamptz range, 4714-11-24 BC to 294276-12-31 AD, in microseconds since
// 1970: a row may hold any of it, so a cursor may name any of it (past a signed 64-bit integer).
const MIN_US = -210_866_803_200_000_000n;
const MAX_US = 9_224_318_015_999_999_999n;
const DAY_US = 86_400_000_000n;

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
 * The key of a row as the page query reads it: `occurred_us` is the text of its microseconds
 * since the epoch, or `infinity` / `-infinity`.
 *
 * @example
 * cursorKeyOf('1764300000123456', id); // { occurredUs: 1764300000123456n, id }
 */
export function cursorKeyOf(occurredUs: string, id: string): AuditCursorKey {
  return { occurredUs: occurredUs === 'infinity' || occurredUs === '-infinity' ? occurredUs : BigInt(occurredUs), id };
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
  if (version !== VERSION || rest.length > 0 || !/^(-?\d{1,19}|-?infinity)$/.test(us ?? '') || !UUID.test(id ?? '')) {
    throw AuditQueryError.invalid('cursor', expected, cursor);
  }
  const key = cursorKeyOf(us, id);
  if (typeof key.occurredUs === 'bigint' && (key.occurredUs < MIN_US || key.occurredUs > MAX_US)) {
    throw AuditQueryError.invalid('cursor', expected, cursor);
  }
  return key;
}

/**
 * The key's instant as a PostgreSQL expression of type timestamptz, exact to the microsecond
 * over the whole range PostgreSQL holds (whole days and the rest added to the epoch in UTC; text
 * would need years BC and past 9999 spelled its way).
 *
 * @example
 * cursorInstantSql({ occurredUs: 1764300000123456n, id }); // "((timestamp 'epoch' + 20420 * interval '1 day' + …"
 */
export function cursorInstantSql(key: AuditCursorKey): string {
  if (typeof key.occurredUs !== 'bigint') return `'${key.occurredUs}'::timestamptz`;
  const days = key.occurredUs / DAY_US;
  const rest = key.occurredUs % DAY_US;
  return `((timestamp 'epoch' + ${days} * interval '1 day' + ${rest} * interval '1 microsecond') AT TIME ZONE 'UTC')`;
}
