import { UNKNOWN_BEFORE } from './entity-change';

/** Values nested deeper are compared and pruned no further (a cycle ends here). */
const MAX_DEPTH = 32;

/**
 * A value as a diff shows it: an SQL expression (a function, as query builders take it) is
 * `'unknown'`, since its result was never read; any other value is kept.
 *
 * @example
 * shownValue(() => 'NOW()'); // 'unknown'
 */
export function shownValue(value: unknown): unknown {
  return typeof value === 'function' ? UNKNOWN_BEFORE : value;
}

/**
 * `value` without the excluded paths below `path` (`settings.theme` takes `theme` out of the
 * `settings` JSON value, in each element of an array too). The value itself is never changed:
 * the objects on an excluded path are copied.
 *
 * @example
 * withoutExcluded({ theme: 'dark', color: 'red' }, 'settings', new Set(['settings.theme'])); // { color: 'red' }
 */
export function withoutExcluded(value: unknown, path: string, exclude: ReadonlySet<string>): unknown {
  if (exclude.size === 0 || value === null || typeof value !== 'object') return value;
  const prefix = `${path}.`;
  const below: string[][] = [];
  for (const excluded of exclude) if (excluded.startsWith(prefix)) below.push(excluded.slice(prefix.length).split('.'));
  return below.length === 0 ? value : pruned(value, below, 0);
}

/**
 * True when two values are the same data: equal scalars, dates of the same instant, buffers of
 * the same bytes, arrays and plain objects with the same contents (key order aside).
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
  if (!isPlainObject(a) || !isPlainObject(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.hasOwn(b, key) && sameValue(a[key], b[key], depth + 1));
}

function pruned(value: unknown, paths: readonly string[][], depth: number): unknown {
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return value;
  if (Array.isArray(value)) return value.map((item: unknown) => pruned(item, paths, depth + 1));
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const here = paths.filter((steps) => steps[0] === key);
    if (here.some((steps) => steps.length === 1)) continue;
    const child =
      here.length === 0
        ? value[key]
        : pruned(
            value[key],
            here.map((steps) => steps.slice(1)),
            depth + 1,
          );
    Object.defineProperty(out, key, { value: child, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
