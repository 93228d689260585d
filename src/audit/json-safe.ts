import { REDACTED, redactText } from './redaction';

export { compileRedactor, REDACTED } from './redaction';
/** Replaces a value that could not be read (a getter or a proxy trap threw). */
export const UNREADABLE = '[Unreadable]';
/** Ends an array or a string cut short because the conversion's byte budget ran out. */
export const TRUNCATED = '[Truncated]';

const MAX_DEPTH = 32;
const DEFAULT_BUDGET_BYTES = 64 * 1024;

/** A converted value, and what the conversion had to give up on. */
export interface JsonSafeResult {
  value: unknown;
  /** False when the byte budget ran out and part of the value was left unread. */
  complete: boolean;
  /** About the serialized size of what was met (strings counted whole, even where cut). */
  bytes: number;
  /** Values that could not be read, each replaced by {@link UNREADABLE}. */
  faults: number;
}

/**
 * Turns any value into plain JSON data that PostgreSQL's `jsonb` accepts, redacting the values of
 * keys that match `isRedacted`. Never throws: circular references, BigInt, functions, symbols,
 * throwing getters and proxy traps, NUL characters and lone surrogates all become safe stand-ins.
 * Reads at most about `maxBytes` of the value: a graph that shares nodes is never expanded past it.
 *
 * @example
 * const a: Record<string, unknown> = { password: 'x', n: 10n };
 * a.self = a;
 * toJsonSafe(a, compileRedactor(['password'])); // { password: '[REDACTED]', n: '10', self: '[Circular]' }
 */
export function toJsonSafe(value: unknown, isRedacted: (key: string) => boolean, maxBytes = DEFAULT_BUDGET_BYTES): unknown {
  return convertJsonSafe(value, isRedacted, maxBytes).value;
}

/**
 * {@link toJsonSafe} with its accounting: work and output are linear in `maxBytes`, whatever the
 * value's shape. With `byNameOnly` (entity diffs) the values of redacted keys are replaced at any
 * depth, but no `[name, value]` pair is guessed from an array and no text is scanned, so a value
 * never redacts another (`['Trade secret NDA', 'Plain NDA']` stays whole); an object so converted
 * keeps to names when it is converted again, inside an entry's `changes`.
 *
 * @example
 * convertJsonSafe({ blob: 'x'.repeat(1e6) }, () => false, 1024); // { value: { blob: 'xx…[Truncated]' }, complete: false, bytes: 1000011, faults: 0 }
 * convertJsonSafe({ title: ['secret', 'x'], token: 't' }, isRedacted, 1024, true).value; // { title: ['secret', 'x'], token: '[REDACTED]' }
 */
export function convertJsonSafe(
  value: unknown,
  isRedacted: (key: string) => boolean,
  maxBytes: number,
  byNameOnly = false,
  reuse = false,
): JsonSafeResult {
  const conversion = new Conversion(isRedacted, maxBytes, byNameOnly, reuse);
  const converted = conversion.convert(value, 0);
  if (byNameOnly && converted !== null && typeof converted === 'object' && !Array.isArray(converted)) {
    // A plain object is made with the prototype already (cheaper than setting it after); any other is given it here.
    if (!(converted instanceof ByNameOnly)) Object.setPrototypeOf(converted, ByNameOnly.prototype);
    if (conversion.complete && conversion.exact)
      ByNameOnly.remember(converted, { isRedacted, bytes: conversion.used, depth: conversion.deepest });
  }
  return { value: converted, complete: conversion.complete, bytes: conversion.used, faults: conversion.faults };
}

/** What converting an object by name only took, when converting it again would give the same value and charge the same bytes (see {@link Conversion.exact}). */
interface Known {
  isRedacted: (key: string) => boolean;
  bytes: number;
  depth: number;
}

/** The prototype of an object converted by name only: converted again, it keeps to names. */
class ByNameOnly {
  /**
   * Set on a root the conversion made whole and exact, so that a conversion with `reuse` (an
   * entry's `changes`, holding entity diffs) keeps it as it is instead of copying it. A private
   * field: JSON, spreads and copies never see it (it was a `WeakMap` entry, which the garbage
   * collector visits).
   */
  #known: Known | undefined = undefined;

  /** What {@link remember} noted of `object`; undefined for any other object (one given the prototype after the fact, a copy). */
  static known(object: object): Known | undefined {
    return #known in object ? object.#known : undefined;
  }

  static remember(object: object, known: Known): void {
    if (#known in object) object.#known = known;
  }
}

/**
 * Whether an object has the prototype of an object the conversion makes (a plain one, or one
 * converted by name only): JSON writes such an object as its own enumerable properties.
 *
 * @example
 * hasDataPrototype(convertJsonSafe({ a: 1 }, () => false, 1024, true).value as object); // true
 * hasDataPrototype(new Date()); // false
 */
export function hasDataPrototype(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === ByNameOnly.prototype || proto === null;
}

/** Makes a string storable in PostgreSQL text and jsonb: no NUL, no lone surrogate. */
export function safeString(value: string): string {
  const wellFormed = value.isWellFormed() ? value : value.toWellFormed();
  return wellFormed.includes('\u0000') ? wellFormed.replaceAll('\u0000', '\uFFFD') : wellFormed;
}

/**
 * What {@link redactText} or {@link safeString} could change: a key-value separator (`%3D`
 * URL-encoded), a bearer token, a command-line option or a PEM line (`--`), PostgreSQL's failing
 * row, a NUL, a surrogate (a lone one is made well-formed). A string without any is kept as it is.
 */
// eslint-disable-next-line no-control-regex -- NUL is one of the characters looked for
const MAY_NEED_CLEANING = /[=:\u0000\uD800-\uDFFF]|--|%(?:25)?3d|bearer|failing row/i;

class Conversion {
  used = 0;
  faults = 0;
  complete = true;
  /** False once a value was met whose output, converted again, is charged other bytes (a Map, an Error, a number that is not finite). */
  exact = true;
  /** The depth of the deepest object kept as an object. */
  deepest = 0;
  /** The objects from the root down to the one being read (at most {@link MAX_DEPTH}). */
  private readonly ancestors: object[] = [];
  /** The whole value is converted by name only: a plain root object is made a {@link ByNameOnly}. */
  private readonly rootByName: boolean;
  constructor(
    private readonly isRedacted: (key: string) => boolean,
    private readonly limit: number,
    /** Redacting by key only: the whole value, or inside one converted so before. */
    private byNameOnly: boolean,
    /** Keep objects {@link ByNameOnly.remember} noted as they are, where they fit the budget and the depth. */
    private readonly reuse = false,
  ) {
    this.rootByName = byNameOnly;
  }

  convert(value: unknown, depth: number): unknown {
    switch (typeof value) {
      case 'string':
        // Most strings hold nothing to redact and nothing to clean: one scan tells.
        if (!MAY_NEED_CLEANING.test(value)) return this.text(value, true);
        return this.text(this.byNameOnly ? value : redactText(value, this.isRedacted));
      case 'number':
        if (Number.isFinite(value)) return this.charge(value, 8);
        this.exact = false;
        return this.charge(String(value), 8);
      case 'boolean':
        return this.charge(value, 5);
      case 'bigint':
        return this.text(value.toString());
      case 'undefined':
        return this.charge(null, 4);
      case 'function':
        return this.charge('[Function]', 12);
      case 'symbol':
        return this.text(value.toString());
    }
    if (value === null) return this.charge(null, 4);
    try {
      const object = value as object;
      return this.byNameOnly || !(object instanceof ByNameOnly) ? this.object(object, depth) : this.nameOnly(object, depth);
    } catch {
      return this.unreadable();
    }
  }

  private nameOnly(object: object, depth: number): unknown {
    const known = this.reuse ? ByNameOnly.known(object) : undefined;
    if (known && known.isRedacted === this.isRedacted && depth + known.depth < MAX_DEPTH && this.used + known.bytes <= this.limit) {
      this.deepest = Math.max(this.deepest, depth + known.depth);
      return this.charge(object, known.bytes);
    }
    this.byNameOnly = true;
    try {
      return this.object(object, depth);
    } finally {
      this.byNameOnly = false;
    }
  }

  private object(object: object, depth: number): unknown {
    // Most objects are plain: their prototype alone rules out every kind tested below (each an instanceof, a walk of it).
    const proto: unknown = Object.getPrototypeOf(object);
    const plain = (proto === Object.prototype || proto === null || proto === ByNameOnly.prototype) && !Array.isArray(object);
    if (!plain) {
      if (object instanceof Date) return this.text(Number.isNaN(object.getTime()) ? 'Invalid Date' : object.toISOString());
      if (Buffer.isBuffer(object)) return this.text(`[Buffer ${object.length} bytes]`);
      if (object instanceof Error) {
        this.exact = false;
        return { name: this.text(String(object.name)), message: this.text(redactText(String(object.message), this.isRedacted)) };
      }
    }
    if (this.ancestors.includes(object)) return this.text('[Circular]');
    if (depth >= MAX_DEPTH) return this.text('[MaxDepth]');
    this.ancestors.push(object);
    if (depth > this.deepest) this.deepest = depth;
    try {
      if (plain) return this.record(object as Record<string, unknown>, depth);
      if (Array.isArray(object)) return this.array(object, depth);
      if (object instanceof Set) return this.array([], depth, object);
      if (object instanceof Map || object instanceof URLSearchParams || object instanceof Headers) {
        this.exact = false;
        return this.entries(object.entries(), depth);
      }
      return this.record(object as Record<string, unknown>, depth);
    } finally {
      // Only ancestors count as circular; the same object twice side by side is fine.
      this.ancestors.pop();
    }
  }

  /** An array, or the values of a Set (iterated, never copied whole). A `[name, value]` pair is redacted by its name (not by name only). */
  private array(array: readonly unknown[], depth: number, set?: Set<unknown>): unknown[] {
    const out: unknown[] = [];
    this.used += 2;
    const items = set ? set.values() : undefined;
    const length = set ? set.size : array.length;
    for (let i = 0; i < length; i++) {
      if (this.spent()) {
        out.push(TRUNCATED);
        break;
      }
      if (i > 0) this.used += 1;
      if (i === 1 && length === 2 && !this.byNameOnly && typeof out[0] === 'string' && this.isRedacted(out[0]))
        out.push(this.charge(REDACTED, 12));
      else out.push(this.read(() => (items ? items.next().value : array[i]), depth + 1));
    }
    return out;
  }

  /** The entries of a Map (or Headers, URLSearchParams) as an object; keys that are not text become their JSON. */
  private entries(entries: Iterator<[unknown, unknown]>, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.used += 2;
    for (let next = entries.next(); !next.done; next = entries.next()) {
      if (this.spent()) break;
      const [key, value] = next.value;
      const name = typeof key === 'string' ? key : JSON.stringify(this.convert(key, depth + 1));
      this.used += name.length + 4;
      const child = this.isRedacted(name) ? this.charge(REDACTED, 12) : this.convert(value, depth + 1);
      setData(out, safeString(name), child);
    }
    return out;
  }

  private record(object: Record<string, unknown>, depth: number): Record<string, unknown> {
    const out = (depth === 0 && this.rootByName ? new ByNameOnly() : {}) as Record<string, unknown>;
    this.used += 2;
    let separator = 0;
    for (const key of Object.keys(object)) {
      if (this.spent()) break;
      const safeKey = safeString(key);
      this.used += key.length + 3 + separator;
      separator = 1;
      const child = this.isRedacted(key) ? this.charge(REDACTED, 12) : this.property(object, key, depth + 1);
      setData(out, safeKey, child);
    }
    return out;
  }

  /** `object[key]`, converted; a getter or proxy trap that throws gives the unreadable stand-in. */
  private property(object: Record<string, unknown>, key: string, depth: number): unknown {
    let value: unknown;
    try {
      value = object[key];
    } catch {
      return this.unreadable();
    }
    return this.convert(value, depth);
  }

  private read(get: () => unknown, depth: number): unknown {
    let value: unknown;
    try {
      value = get();
    } catch {
      return this.unreadable();
    }
    return this.convert(value, depth);
  }

  /** `value` (made safe unless `clean`: known to hold no NUL and no surrogate), cut where the budget ends. */
  private text(value: string, clean = false): string {
    const room = this.limit - this.used;
    this.used += value.length + 2;
    if (value.length <= room) return clean ? value : safeString(value);
    this.complete = false;
    return safeString(value.slice(0, Math.max(0, room))) + TRUNCATED;
  }

  private unreadable(): string {
    this.faults += 1;
    return this.charge(UNREADABLE, 14);
  }

  private charge<T>(value: T, bytes: number): T {
    this.used += bytes;
    return value;
  }

  /** Past the budget nothing more is read; the caller marks the value truncated. */
  private spent(): boolean {
    if (this.used <= this.limit) return false;
    this.complete = false;
    return true;
  }
}

/** Sets `key` on a fresh object; a `__proto__` key is defined, not assigned, so it stays data, not the prototype. */
function setData(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  else out[key] = value;
}
