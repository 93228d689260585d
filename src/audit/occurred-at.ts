import { safeString, toJsonSafe } from './json-safe';

/**
 * Key under which `metadata` keeps a caller's `occurredAt` that could not be stored as given
 * (out of range, invalid, or not a Date); the row's `occurred_at` is then the time of `log()`.
 */
export const ORIGINAL_OCCURRED_AT_KEY = '_auditOriginalOccurredAt';

/**
 * The instants kept as given: years 0001 to 9999 (UTC). A record carries `occurredAt` as ISO 8601
 * text, and outside these years `toISOString()` writes the extended `±YYYYYY` form, which
 * PostgreSQL refuses (22009, 22007, 22008), although its own timestamptz range is wider
 * (4714-11-24 BC to 294276 AD).
 *
 * @example
 * OCCURRED_AT_RANGE.max.toISOString(); // '9999-12-31T23:59:59.999Z'
 */
export const OCCURRED_AT_RANGE = {
  min: new Date('0001-01-01T00:00:00.000Z'),
  max: new Date('9999-12-31T23:59:59.999Z'),
} as const;

/**
 * The `occurredAt` to store, and, when the caller's value could not be stored as given, a JSON-safe
 * text of that value to keep in `metadata` under {@link ORIGINAL_OCCURRED_AT_KEY}.
 *
 * @example
 * storableOccurredAt(new Date('+200000-01-01'), Date.now());
 * // { iso: '2026-11-28T19:02:11.023Z', original: '+200000-01-01T00:00:00.000Z' }
 */
export function storableOccurredAt(value: unknown, nowMs: number): { iso: string; original?: string } {
  if (value === undefined || value === null) return { iso: isoTime(nowMs) };
  if (value instanceof Date) {
    const time = value.getTime();
    if (time >= OCCURRED_AT_RANGE.min.getTime() && time <= OCCURRED_AT_RANGE.max.getTime()) return { iso: value.toISOString() };
    return { iso: isoTime(nowMs), original: Number.isNaN(time) ? 'Invalid Date' : value.toISOString() };
  }
  const safe = toJsonSafe(value, () => false, 1024);
  const original = typeof safe === 'string' ? safe : JSON.stringify(safe);
  // The value is only a witness; a caller's huge object must not crowd out the entry.
  return { iso: isoTime(nowMs), original: safeString(original.slice(0, 256)) };
}

let lastMs = NaN;
let lastIso = '';
/** The second of the last text made in full, and that text without its milliseconds and `Z`. */
let lastSecond = NaN;
let secondText = '';

/**
 * `new Date(ms).toISOString()`, remembered for the last millisecond asked: entries logged in the
 * same millisecond share one string, and within one second only the milliseconds are written anew.
 *
 * @example
 * isoTime(0); // '1970-01-01T00:00:00.000Z'
 */
export function isoTime(ms: number): string {
  if (ms === lastMs) return lastIso;
  // Only a whole millisecond takes the shortcut: `Date` drops the fraction of any other.
  const second = Number.isInteger(ms) ? Math.floor(ms / 1000) : NaN;
  if (second === lastSecond) {
    const milli = ms - second * 1000;
    lastIso = `${secondText}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
  } else {
    lastIso = new Date(ms).toISOString();
    lastSecond = second;
    secondText = lastIso.slice(0, -4);
  }
  lastMs = ms;
  return lastIso;
}

/** `metadata` with the original `occurredAt` first, so a truncated preview still shows it. */
export function withOriginalOccurredAt(metadata: unknown, original: string): Record<string, unknown> {
  const plain = metadata !== null && typeof metadata === 'object' && !Array.isArray(metadata);
  if (plain && !Object.hasOwn(metadata, ORIGINAL_OCCURRED_AT_KEY)) return { [ORIGINAL_OCCURRED_AT_KEY]: original, ...metadata };
  return metadata === null ? { [ORIGINAL_OCCURRED_AT_KEY]: original } : { [ORIGINAL_OCCURRED_AT_KEY]: original, metadata };
}
