/** Values nested deeper are compared no further (a cycle ends here). */
const MAX_DEPTH = 32;

/**
 * True when two values are the same data: equal scalars, dates of the same instant, buffers of
 * the same bytes, arrays and objects with the same contents (key order aside; an object by its own
 * enumerable keys, as JSON writes it, whatever its class).
 *
 * @example
 * sameValue({ a: 1, b: [2] }, { b: [2], a: 1 }); // true
 */
export function sameValue(a: unknown, b: unknown, depth = 0): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object') return Number.isNaN(a) && Number.isNaN(b);
  if (a === null || b === null || depth >= MAX_DEPTH) return false;
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => sameValue(item, b[i], depth + 1));
  }
  if (a instanceof Error || b instanceof Error) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every(
    (key) => Object.hasOwn(b, key) && sameValue((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], depth + 1),
  );
}
