/** Replaces the value under a redacted key in every sink (DB, stderr, Sentry). */
export const REDACTED = '[REDACTED]';

const MAX_DEPTH = 32;

/**
 * Turns any value into plain JSON data that PostgreSQL's `jsonb` accepts, redacting the values of
 * keys that match `redactKeys`. Never throws: circular references, BigInt, functions, symbols,
 * throwing getters, NUL characters and lone surrogates all become safe stand-ins.
 *
 * @example
 * const a: Record<string, unknown> = { password: 'x', n: 10n };
 * a.self = a;
 * toJsonSafe(a, compileRedactor(['password'])); // { password: '[REDACTED]', n: '10', self: '[Circular]' }
 */
export function toJsonSafe(value: unknown, isRedacted: (key: string) => boolean): unknown {
  return convert(value, isRedacted, new WeakSet<object>(), 0);
}

/** Builds the key matcher: case-insensitive, ignoring `-` and `_`, matching as a substring. */
export function compileRedactor(redactKeys: readonly string[]): (key: string) => boolean {
  const needles = redactKeys.map(normalizeKey).filter((k) => k.length > 0);
  // Entries repeat the same keys: remember each answer (bounded, so hostile keys cannot grow it).
  const known = new Map<string, boolean>();
  return (key) => {
    let redacted = known.get(key);
    if (redacted === undefined) {
      const k = normalizeKey(key);
      redacted = needles.some((needle) => k.includes(needle));
      if (known.size < 10_000) known.set(key, redacted);
    }
    return redacted;
  };
}

/** Makes a string storable in PostgreSQL text and jsonb: no NUL, no lone surrogate. */
export function safeString(value: string): string {
  const wellFormed = value.isWellFormed() ? value : value.toWellFormed();
  return wellFormed.includes('\u0000') ? wellFormed.replaceAll('\u0000', '\uFFFD') : wellFormed;
}

function normalizeKey(key: string): string {
  return key.toLowerCase().replace(/[-_\s]/g, '');
}

function convert(value: unknown, isRedacted: (key: string) => boolean, seen: WeakSet<object>, depth: number): unknown {
  switch (typeof value) {
    case 'string':
      return safeString(value);
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'undefined':
      return null;
    case 'function':
      return '[Function]';
    case 'symbol':
      return safeString(value.toString());
  }
  if (value === null) return null;
  const object = value as object;
  if (object instanceof Date) return Number.isNaN(object.getTime()) ? 'Invalid Date' : object.toISOString();
  if (Buffer.isBuffer(object)) return `[Buffer ${object.length} bytes]`;
  if (object instanceof Error) return { name: safeString(object.name), message: safeString(object.message) };
  if (seen.has(object)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[MaxDepth]';
  seen.add(object);
  try {
    if (Array.isArray(object)) {
      return object.map((item) => convert(item, isRedacted, seen, depth + 1));
    }
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(object)) {
      const safeKey = safeString(key);
      let child: unknown;
      try {
        child = isRedacted(key) ? REDACTED : convert((object as Record<string, unknown>)[key], isRedacted, seen, depth + 1);
      } catch {
        child = '[Unreadable]';
      }
      // Defined, not assigned: a `__proto__` key is data here, not the object's prototype.
      Object.defineProperty(out, safeKey, { value: child, enumerable: true, writable: true, configurable: true });
    }
    return out;
  } finally {
    // Only ancestors count as circular; the same object twice side by side is fine.
    seen.delete(object);
  }
}
