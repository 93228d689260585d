import { jsonbText } from '../integrity/entry-encoding';
import { ERASED, parseCommitments, parsePersonal, type PersonalPath } from './personal-values';

/**
 * `changes` and `metadata` as they were logged: each personal value kept apart put back at its
 * path, or `[ERASED]` there once erased (never null or missing, which could be taken for "none").
 * A row without commitments is returned as it is.
 *
 * @example
 * revealPayloads('{"erased":"0190…"}', '[[["changes","body","email"],"q0…"]]', { body: {} }, null);
 * // { changes: { body: { email: '[ERASED]' } }, metadata: null }
 */
export function revealPayloads(
  personalText: string | null | undefined,
  commitmentsText: string | null | undefined,
  changes: unknown,
  metadata: unknown,
): { changes: unknown; metadata: unknown } {
  const places = personalPlaces(personalText, commitmentsText);
  if (places.length === 0) return { changes, metadata };
  const roots: Record<string, unknown> = { changes: structuredClone(changes), metadata: structuredClone(metadata) };
  for (const [path, value] of places) roots[path[0] as string] = put(roots[path[0] as string], path.slice(1), value);
  return { changes: roots.changes, metadata: roots.metadata };
}

/**
 * As {@link revealPayloads}, for the JSON texts of an export: a row with personal paths is
 * parsed and written again as PostgreSQL writes `jsonb`; any other row's text is left as it is.
 *
 * @example
 * revealPayloadTexts(row.personal, row.commitments, row.changes, row.metadata).changes; // '{"body": {"email": "[ERASED]"}}'
 */
export function revealPayloadTexts(
  personalText: string | null | undefined,
  commitmentsText: string | null | undefined,
  changes: string | null,
  metadata: string | null,
): { changes: string | null; metadata: string | null } {
  if (personalPlaces(personalText, commitmentsText).length === 0) return { changes, metadata };
  const parse = (text: string | null) => (text === null ? null : (JSON.parse(text) as unknown));
  const revealed = revealPayloads(personalText, commitmentsText, parse(changes), parse(metadata));
  const text = (value: unknown, before: string | null) => (value === null && before === null ? null : jsonbText(value));
  return { changes: text(revealed.changes, changes), metadata: text(revealed.metadata, metadata) };
}

/**
 * The id of the erasure that took a row's personal values, read from its `personal` column (the
 * erased marker), or null for a row never erased (or without commitments, which no erasure takes). It is what tells an erased row from one whose
 * values were logged as the text `[ERASED]`.
 *
 * @example
 * erasedBy('{"erased":"0193a0c4-…"}', row.commitments); // '0193a0c4-…'
 * erasedBy('{"salt":"…","values":[]}', row.commitments); // null
 */
export function erasedBy(personalText: string | null | undefined, commitmentsText: string | null | undefined): string | null {
  // The module erases only rows with commitments: a marker on any other row was planted.
  if (!personalText || !commitmentsText) return null;
  const personal = parsePersonal(personalText);
  return personal && 'erased' in personal ? personal.erased : null;
}

/** The personal values of `changes` and `metadata` and where they go: their values at committed paths, or `[ERASED]` at every committed path. */
function personalPlaces(personalText: string | null | undefined, commitmentsText: string | null | undefined): [PersonalPath, unknown][] {
  if (!commitmentsText || !personalText) return [];
  const personal = parsePersonal(personalText);
  if (personal && 'erased' in personal) {
    return (parseCommitments(commitmentsText) ?? []).filter(([path]) => path.length > 1).map(([path]) => [path, ERASED]);
  }
  // Only at a committed path: a path planted in `personal` must not overwrite a field the seal covers.
  const committed = new Set((parseCommitments(commitmentsText) ?? []).map(([path]) => JSON.stringify(path)));
  return (personal?.values ?? [])
    .filter(([path]) => committed.has(JSON.stringify(path)))
    .map(([path, text]) => [path, JSON.parse(text) as unknown]);
}

/**
 * `root` with `value` at `path`, objects made where the path lacks one. Each step is the node's own
 * property, defined rather than assigned: a path through `__proto__` or `constructor` (a planted
 * row's) names a key of the row's own copy, never the prototype of every object in the process.
 */
function put(root: unknown, path: PersonalPath, value: unknown): unknown {
  if (path.length === 0) return value;
  const [step, ...rest] = path;
  const node = (root !== null && typeof root === 'object' ? root : typeof step === 'number' ? [] : {}) as Record<string | number, unknown>;
  const own = Object.hasOwn(node, step) ? node[step] : undefined;
  Object.defineProperty(node, step, { value: put(own, rest, value), enumerable: true, writable: true, configurable: true });
  return node;
}
