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

/**
 * {@link sameValue} for values too large to be shown whole, on what a diff would show of them:
 * the keys at the excluded `paths` below the value left out (as {@link shownValue} leaves them
 * out, in each element of an array too). At most `budget` pairs of objects are compared, so the
 * work stays bounded for any value (a graph that shares nodes too). True only when the values are
 * known to be the same data; false when they differ; undefined when that could not be decided
 * within the budget, or for a value this comparison does not read as JSON does (a Map, a Set, a
 * typed array, a value with its own `toJSON()`, a getter that throws): such a pair is never
 * taken for unchanged.
 *
 * @example
 * sameWithin({ pages: [{}, {}], role: 'viewer' }, { pages: [{}, {}], role: 'owner' }, [], 1_000); // false
 * sameWithin({ theme: 'a', size: 1 }, { theme: 'b', size: 1 }, [['theme']], 1_000); // true (theme is excluded)
 */
export function sameWithin(a: unknown, b: unknown, paths: readonly string[][], budget: number): boolean | undefined {
  const left = { pairs: budget };
  try {
    return compareWithin(a, b, paths, 0, left);
  } catch {
    return undefined;
  }
}

function compareWithin(a: unknown, b: unknown, paths: readonly string[][], depth: number, left: { pairs: number }): boolean | undefined {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object')
    return typeof a === 'function' || typeof b === 'function' ? undefined : sameValue(a, b);
  if (a === null || b === null) return false;
  if (depth >= MAX_DEPTH || --left.pairs < 0) return undefined;
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  if (!readAsJson(a) || !readAsJson(b)) return undefined;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b)) return false;
    if (a.length !== b.length) return false;
    let undecided = false;
    for (let i = 0; i < a.length; i++) {
      const same = compareWithin(a[i], b[i], paths, depth + 1, left);
      if (same === false) return false;
      if (same === undefined) undecided = true;
      if (left.pairs < 0) return undefined;
    }
    return undecided ? undefined : true;
  }
  const shown = (object: object) => Object.keys(object).filter((key) => !paths.some((steps) => steps.length === 1 && steps[0] === key));
  const keys = shown(a);
  const other = shown(b);
  if (keys.length !== other.length || !keys.every((key) => Object.hasOwn(b, key))) return false;
  let undecided = false;
  for (const key of keys) {
    const below = paths.length === 0 ? paths : paths.filter((steps) => steps[0] === key).map((steps) => steps.slice(1));
    const same = compareWithin((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], below, depth + 1, left);
    if (same === false) return false;
    if (same === undefined) undecided = true;
    if (left.pairs < 0) return undefined;
  }
  return undecided ? undefined : true;
}

/** An array, or an object JSON writes by its own enumerable keys (no `toJSON()`, not a collection or binary data). */
function readAsJson(value: object): boolean {
  if (Array.isArray(value)) return true;
  if (value instanceof Map || value instanceof Set || value instanceof Error || ArrayBuffer.isView(value) || value instanceof ArrayBuffer)
    return false;
  return typeof (value as { toJSON?: unknown }).toJSON !== 'function';
}

/** Digits past which a decimal is not compared as one (PostgreSQL's `numeric` holds at most 131,072 before the point, 16,383 after). */
const MAX_DECIMAL_CHARS = 150_000;

/**
 * A decimal number as a `numeric` or `bigint` column stores it: the text PostgreSQL reads for it
 * (a number as JavaScript writes it, `1e+21` too), rounded half away from zero to `scale` digits
 * after the point when the column has one (a negative scale rounds to tens, hundreds, … before
 * it), written without leading or trailing zeros and without the sign of zero. Undefined for
 * anything else (not a decimal, a value too long).
 *
 * @example
 * storedDecimal('12.50', 2); // '12.5'
 * storedDecimal(12.5, 2); // '12.5'
 * storedDecimal(12.505, 2); // '12.51'
 * storedDecimal(12345, -2); // '12300'
 * storedDecimal('7', undefined) === storedDecimal(7, undefined); // true
 */
export function storedDecimal(value: unknown, scale: number | undefined): string | undefined {
  const text =
    typeof value === 'number' || typeof value === 'bigint' ? String(value) : typeof value === 'string' ? value.trim() : undefined;
  if (text === undefined || text.length > MAX_DECIMAL_CHARS) return undefined;
  const special = /^([+-]?)(nan|inf|infinity)$/i.exec(text);
  if (special) return special[2].toLowerCase() === 'nan' ? 'NaN' : `${special[1] === '-' ? '-' : ''}Infinity`;
  const parts = /^([+-]?)(\d*)(?:\.(\d*))?(?:e([+-]?\d{1,6}))?$/i.exec(text);
  if (!parts || (parts[2] === '' && (parts[3] ?? '') === '')) return undefined;
  const exponent = Number(parts[4] ?? 0);
  if (Math.abs(exponent) > MAX_DECIMAL_CHARS) return undefined;
  const digits = parts[2] + (parts[3] ?? '');
  // Where the point falls in `digits`, after the exponent.
  const point = parts[2].length + exponent;
  let whole = point <= 0 ? '' : point >= digits.length ? digits + '0'.repeat(point - digits.length) : digits.slice(0, point);
  let fraction = point <= 0 ? '0'.repeat(-point) + digits : point >= digits.length ? '' : digits.slice(point);
  if (scale !== undefined && scale < 0) {
    // A negative scale rounds to a power of ten before the point: numeric(5,-2) stores 12345 as 12300.
    const keep = whole.length + scale;
    const up = keep >= 0 && keep < whole.length && whole.charCodeAt(keep) >= 0x35;
    whole = keep < 0 ? '' : roundedUp(whole.slice(0, keep), up) + '0'.repeat(-scale);
    fraction = '';
  } else if (scale !== undefined && fraction.length > scale) {
    const up = fraction.charCodeAt(scale) >= 0x35;
    const kept = roundedUp(whole + fraction.slice(0, scale), up);
    whole = kept.slice(0, kept.length - scale);
    fraction = kept.slice(kept.length - scale);
  }
  whole = whole.replace(/^0+/, '');
  fraction = fraction.replace(/0+$/, '');
  if (whole === '' && fraction === '') return '0';
  return `${parts[1] === '-' ? '-' : ''}${whole || '0'}${fraction ? `.${fraction}` : ''}`;
}

/** `digits` plus one in its last place when `up` (a carry out of the first digit adds a digit). */
function roundedUp(digits: string, up: boolean): string {
  if (!up) return digits;
  const out = digits.split('');
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i] !== '9') {
      out[i] = String(Number(out[i]) + 1);
      return out.join('');
    }
    out[i] = '0';
  }
  return `1${out.join('')}`;
}
