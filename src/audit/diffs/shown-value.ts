import { createHash } from 'node:crypto';
import { TRUNCATED, UNREADABLE } from '../json-safe';
import { UNKNOWN_BEFORE } from './entity-change';

/** Values nested deeper are shown as they are, no further pruned (a cycle ends here). */
const MAX_DEPTH = 32;
/** Objects and arrays read for one value at most: a graph that shares nodes is never expanded past it. */
export const MAX_NODES = 1 << 20;
/** Hex digits of a binary value's SHA-256 shown: enough to tell two values apart, never their bytes. */
const HASH_HEX = 16;

/**
 * A property's value as a diff shows it, as JSON would write it: a value with a `toJSON()` (a
 * value type of the app behind a column transformer, say) as what its `toJSON()` returns, any
 * other object by its own enumerable keys (a class instance such as a validated DTO too), without
 * the excluded paths below `path` (`settings.theme` takes `theme` out of the `settings` value, in
 * each element of an array too). Binary data (a Buffer, a `bytea` value, a typed array) is its
 * length and the start of its SHA-256, never its bytes; an SQL expression (a function, as query
 * builders take it) is `'unknown'`, since its result was never read. The value itself is never
 * changed: what differs is copied.
 *
 * @example
 * shownValue(Buffer.from('cafe', 'hex'), 'content', new Set()); // '[Buffer 2 bytes, sha256 …]'
 * shownValue(Object.assign(new SettingsDto(), { theme: 'dark', color: 'red' }), 'settings', new Set(['settings.theme'])); // { color: 'red' }
 * shownValue(new Money(1250, 'EUR'), 'total', new Set()); // '12.50 EUR' (its toJSON())
 */
export function shownValue(value: unknown, path: string, exclude: ReadonlySet<string>): unknown {
  return shownValueOf(value, path, exclude).value;
}

/** A value as a diff shows it, and whether it was cut: past {@link MAX_NODES} objects and arrays, each further one is `[Truncated]`. */
export interface ShownValue {
  value: unknown;
  /** True when part of the value is `[Truncated]`: two values cut alike may still differ past the cut. */
  cut: boolean;
}

/**
 * {@link shownValue}, saying whether the value was cut; with the exclusions below `path`, as
 * {@link sameWithin} takes them, to compare values that were.
 *
 * @example
 * shownValueOf({ pages: hugeList, role: 'owner' }, 'document', new Set()).cut; // true past 2^20 objects and arrays
 */
export function shownValueOf(value: unknown, path: string, exclude: ReadonlySet<string>): ShownValue & { below: string[][] } {
  if (typeof value === 'function') return { value: UNKNOWN_BEFORE, cut: false, below: [] };
  if (value === null || typeof value !== 'object') return { value, cut: false, below: [] };
  const prefix = `${path}.`;
  const below: string[][] = [];
  for (const excluded of exclude) if (excluded.startsWith(prefix)) below.push(excluded.slice(prefix.length).split('.'));
  const walk = new Walk();
  const shown = walk.value(value, lastStep(path), below, 0);
  return { value: shown, cut: walk.cut, below };
}

/**
 * Binary data as a diff shows it: its length and the first {@link HASH_HEX} hex digits of the
 * SHA-256 of its bytes, so that a change to other bytes of the same length reads as one.
 *
 * @example
 * binarySummary(Buffer.from('abc')); // '[Buffer 3 bytes, sha256 ba7816bf8f01cfea]'
 */
export function binarySummary(value: ArrayBufferView | ArrayBuffer): string {
  const bytes = ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : new Uint8Array(value);
  const kind = Buffer.isBuffer(value) ? 'Buffer' : value.constructor.name;
  const sha = createHash('sha256').update(bytes).digest('hex').slice(0, HASH_HEX);
  return `[${kind} ${bytes.byteLength} bytes, sha256 ${sha}]`;
}

class Walk {
  private nodes = 0;
  /** True once an object or array was left out for {@link MAX_NODES}. */
  cut = false;

  /** `value` at `key`, with the excluded `paths` below it: the same object when nothing in it is shown otherwise. */
  value(value: unknown, key: string, paths: readonly string[][], depth: number): unknown {
    if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return value;
    if (++this.nodes > MAX_NODES) {
      this.cut = true;
      return TRUNCATED;
    }
    try {
      if (value instanceof Date || value instanceof Error) return value;
      if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return binarySummary(value);
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      // JSON.stringify calls a value's toJSON() once, then writes what it returned (as it is).
      if (typeof toJSON === 'function') return this.json(toJSON.call(value, key) as unknown, key, paths, depth);
      return this.json(value, key, paths, depth);
    } catch {
      return UNREADABLE;
    }
  }

  private json(value: unknown, key: string, paths: readonly string[][], depth: number): unknown {
    if (value === null || typeof value !== 'object') return value;
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return binarySummary(value);
    if (Array.isArray(value)) return this.items(value, paths, depth);
    // Shown by the JSON-safe conversion as an array and as an object of their entries.
    if (value instanceof Set) return this.items([...value], paths, depth);
    if (value instanceof Map || value instanceof URLSearchParams || value instanceof Headers) {
      return this.members(entriesObject(value.entries()), paths, depth);
    }
    if (value instanceof Date || value instanceof Error) return value;
    return this.members(value as Record<string, unknown>, paths, depth);
  }

  private items(array: readonly unknown[], paths: readonly string[][], depth: number): unknown[] {
    let out: unknown[] | undefined;
    for (let i = 0; i < array.length; i++) {
      const item = array[i];
      const shown = this.value(item, String(i), paths, depth + 1);
      if (shown !== item) (out ??= [...array])[i] = shown;
    }
    return out ?? (array as unknown[]);
  }

  /** An object by its own enumerable keys, as JSON and the JSON-safe conversion read it, the excluded ones left out. */
  private members(object: Record<string, unknown>, paths: readonly string[][], depth: number): unknown {
    let out: Record<string, unknown> | undefined;
    const keys = Object.keys(object);
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k];
      const here = paths.length === 0 ? paths : paths.filter((steps) => steps[0] === key);
      if (here.some((steps) => steps.length === 1)) {
        out ??= copied(object, keys, k);
        continue;
      }
      const child = readMember(object, key);
      const shown =
        child === UNREAD
          ? UNREADABLE
          : this.value(
              child,
              key,
              here.map((steps) => steps.slice(1)),
              depth + 1,
            );
      if (shown !== child && !out) out = copied(object, keys, k);
      if (out) setData(out, key, shown);
    }
    return out ?? object;
  }
}

/** What {@link readMember} gives for a member whose getter or proxy trap threw. */
const UNREAD = Symbol('unread');

function readMember(object: Record<string, unknown>, key: string): unknown {
  try {
    return object[key];
  } catch {
    return UNREAD;
  }
}

/** A plain copy of the first `count` members of `object`, in its key order. */
function copied(object: Record<string, unknown>, keys: readonly string[], count: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let k = 0; k < count; k++) {
    const value = readMember(object, keys[k]);
    setData(out, keys[k], value === UNREAD ? UNREADABLE : value);
  }
  return out;
}

/** The entries of a Map (or Headers, URLSearchParams) as an object, keyed as the JSON-safe conversion keys them. */
function entriesObject(entries: Iterator<[unknown, unknown]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let next = entries.next(); !next.done; next = entries.next()) {
    const [key, value] = next.value;
    setData(out, typeof key === 'string' ? key : String(JSON.stringify(key) ?? key), value);
  }
  return out;
}

/** Sets `key` on a fresh object; a `__proto__` key is defined, not assigned, so it stays data. */
function setData(out: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
}

function lastStep(path: string): string {
  return path.slice(path.lastIndexOf('.') + 1);
}
