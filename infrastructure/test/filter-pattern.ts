/**
 * A CloudWatch Logs JSON filter pattern of the one form the audit stack uses, `{ $.a.b = "value" }`,
 * parsed for evaluation against log lines in tests.
 *
 * @example
 * const pattern: JsonEqualsPattern = { path: ['event'], value: 'audit.dropped' };
 */
export interface JsonEqualsPattern {
  readonly path: readonly string[];
  readonly value: string;
}

const EQUALS_FORM = /^\{\s*\$((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*=\s*"([^"*\\]*)"\s*\}$/;

/**
 * Parses `{ $.field = "value" }`. Throws on any other form (wildcards, `!=`, numbers, `&&`, `||`,
 * arrays, plain-text terms), so a test cannot silently evaluate a pattern it does not understand.
 *
 * @example
 * parseFilterPattern('{ $.event = "audit.dropped" }'); // { path: ['event'], value: 'audit.dropped' }
 */
export function parseFilterPattern(pattern: string): JsonEqualsPattern {
  const match = EQUALS_FORM.exec(pattern);
  if (!match) {
    throw new Error(
      `Unsupported filter pattern ${JSON.stringify(pattern)}: this evaluator understands only ` +
        '{ $.field = "value" } with a literal string value',
    );
  }
  return { path: match[1].slice(1).split('.'), value: match[2] };
}

/**
 * Whether CloudWatch Logs would count `line` for `pattern`: the line must be a JSON object whose
 * value at the path is exactly the string (case-sensitive). A non-JSON line never matches.
 *
 * @example
 * matchesLine(parseFilterPattern('{ $.event = "audit.dropped" }'), '{"event":"audit.dropped"}'); // true
 */
export function matchesLine(pattern: JsonEqualsPattern, line: string): boolean {
  let node: unknown;
  try {
    node = JSON.parse(line);
  } catch {
    return false;
  }
  for (const key of pattern.path) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return false;
    node = (node as Record<string, unknown>)[key];
  }
  return node === pattern.value;
}
