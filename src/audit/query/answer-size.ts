/** Thrown inside `JSON.stringify` to stop it once the budget is spent. */
const OVER = Symbol('over');

/**
 * Whether `value` written as JSON takes at most `limit` bytes (UTF-8, escapes counted). It stops as
 * soon as the count passes `limit`, so a 19 MB page costs no more to measure than a small one; a
 * value JSON cannot write (a cycle, a bigint) does not fit.
 *
 * @example
 * fitsIn({ items: [{ id: '1' }], nextCursor: null }, 64 * 1024); // true
 * fitsIn({ note: 'x'.repeat(70_000) }, 64 * 1024); // false
 */
export function fitsIn(value: unknown, limit: number): boolean {
  let bytes = 0;
  try {
    JSON.stringify(value, (key: string, item: unknown) => {
      // A key with its quotes, colon and comma (array indexes counted too: an overestimate); a string as written; anything else 24 bytes at most.
      bytes += key.length === 0 ? 0 : Buffer.byteLength(JSON.stringify(key)) + 2;
      bytes += typeof item === 'string' ? Buffer.byteLength(JSON.stringify(item)) : 24;
      if (bytes > limit) throw OVER;
      return item;
    });
  } catch {
    // OVER, or a value JSON cannot write: either way not a small answer.
    return false;
  }
  return true;
}
