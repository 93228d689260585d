/** Thrown inside `JSON.stringify` to stop it once the budget is spent. */
const OVER = Symbol('over');

/**
 * Whether `value` written as JSON takes at most `limit` bytes (UTF-8, escapes counted). It counts
 * what JSON writes as it walks the value, never more than a few bytes over (a comma for each
 * member, the first included, and the key of a member JSON leaves out), and stops as soon as the
 * count passes `limit`, so a 19 MB page costs no more to measure than a small one; a value JSON
 * cannot write (a cycle, a bigint) does not fit.
 *
 * @example
 * fitsIn({ items: [{ id: '1' }], nextCursor: null }, 64 * 1024); // true
 * fitsIn({ note: 'x'.repeat(70_000) }, 64 * 1024); // false
 */
export function fitsIn(value: unknown, limit: number): boolean {
  let bytes = 0;
  let root = true;
  try {
    JSON.stringify(value, function (this: unknown, key: string, item: unknown) {
      // The first call is the value itself; each later one a member: its comma, and in an object its key with quotes and colon.
      if (root) root = false;
      else bytes += Array.isArray(this) ? 1 : Buffer.byteLength(JSON.stringify(key)) + 2;
      bytes += writtenBytes(item);
      if (bytes > limit) throw OVER;
      return item;
    });
  } catch {
    // OVER, or a value JSON cannot write: either way not a small answer.
    return false;
  }
  return true;
}

/** What JSON writes for `item` itself (an object or array: its brackets; its members are counted as they come). */
function writtenBytes(item: unknown): number {
  switch (typeof item) {
    case 'string':
      return Buffer.byteLength(JSON.stringify(item));
    case 'number':
      return Number.isFinite(item) ? String(item).length : 4;
    case 'boolean':
      return item ? 4 : 5;
    case 'object':
      return item === null ? 4 : 2;
    default:
      // undefined, a function, a symbol: `null` in an array, left out of an object.
      return 4;
  }
}
