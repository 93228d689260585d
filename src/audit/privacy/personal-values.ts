import { hash, randomFillSync } from 'node:crypto';
import { type AuditRecord } from '../audit-entry';
import { EACH, type PathStep, type ResolvedPrivacyOptions } from './privacy-options';

/** What reads show in place of an erased value, and what the erasure writes in the actor's columns. */
export const ERASED = '[ERASED]';

/** A personal value's place: `['user_id']`, or a path in `changes` / `metadata` (`['changes', 'entities', 3, 'fields', 'email']`). */
export type PersonalPath = (string | number)[];

/** The `personal` column of a row not erased: its salt, and each value of a `personalData` path as JSON text. */
export interface PersonalValues {
  salt: string;
  values: [PersonalPath, string][];
}

/** The `personal` column of an erased row: the erasure that took its values and salt. */
export interface ErasedMarker {
  erased: string;
}

/** The actor's fields, as the record names them and as the row's columns do. */
export const ACTOR_FIELDS = [
  ['userId', 'user_id'],
  ['ip', 'ip'],
  ['userAgent', 'user_agent'],
] as const;

/** The JSON text of each actor column's path in `commitments`, in the order of {@link ACTOR_FIELDS}. */
const ACTOR_PATHS = ACTOR_FIELDS.map(([, column]) => JSON.stringify([column]));

/**
 * The commitment to one personal value: SHA-256 of the row's salt, the value's path and the value
 * (each on its own line: the salt has a fixed length, the path is JSON), base64url. Without the
 * salt (removed by the erasure with the value) no guess of the value can be checked against it.
 *
 * @example
 * commitment(salt, ['user_id'], 'u-42'); // 'q0Yc…'
 */
export function commitment(salt: string, path: PersonalPath, value: string): string {
  return committed(`audit-personal-v1\n${salt}\n`, JSON.stringify(path), value);
}

/** The commitment of {@link commitment}, from its first line and salt (`head`) and the path's JSON text. */
function committed(head: string, pathText: string, value: string): string {
  return hash('sha256', `${head}${pathText}\n${value}`, 'base64url');
}

/**
 * Makes the step of `normalize()` that keeps a record's personal values apart (the `privacy`
 * option): the actor's id replaced by its pseudonym when one is configured, the values of the
 * `personalData` paths taken out of `changes` and `metadata` into `personal` with a fresh random
 * salt, and a commitment to each personal value, actor fields included, in `commitments`.
 *
 * @example
 * new AuditEntryNormalizer(redactKeys, maxEntryBytes, sign, personalSplitter(options.privacy));
 */
export function personalSplitter(options: ResolvedPrivacyOptions): ((record: AuditRecord) => void) | undefined {
  if (!options.enabled) return undefined;
  const changesPaths = diffAliases(options.paths.filter((p) => p[0] === 'changes').map((p) => p.slice(1)));
  const metadataPaths = options.paths.filter((p) => p[0] === 'metadata').map((p) => p.slice(1));
  return (record) => {
    if (options.userIdPseudonym && record.userId !== null) record.userId = options.userIdPseudonym(record.userId);
    const salt = freshSalt();
    const head = `audit-personal-v1\n${salt}\n`;
    const taken: [PersonalPath, unknown][] = [];
    for (const steps of changesPaths) record.changes = take(record.changes, steps, 0, ['changes'], taken);
    for (const steps of metadataPaths) record.metadata = take(record.metadata, steps, 0, ['metadata'], taken);
    // Both columns' texts are written as JSON.stringify would write them (salt and commitments are
    // base64url: nothing to escape), each path's JSON made once for both.
    let commitments = '';
    for (let i = 0; i < ACTOR_FIELDS.length; i++) {
      const value = record[ACTOR_FIELDS[i][0]];
      if (value !== null) commitments += `,[${ACTOR_PATHS[i]},"${committed(head, ACTOR_PATHS[i], value)}"]`;
    }
    let values = '';
    for (const [path, value] of taken) {
      const pathText = JSON.stringify(path);
      const text = JSON.stringify(value) ?? 'null';
      values += `,[${pathText},${JSON.stringify(text)}]`;
      commitments += `,[${pathText},"${committed(head, pathText, text)}"]`;
    }
    record.personal = `{"salt":"${salt}","values":[${values.slice(1)}]}`;
    record.commitments = `[${commitments.slice(1)}]`;
  };
}

// Random bytes are drawn 4 KiB at a time: one system call per 128 salts instead of one per row. Safe
// as salts: every byte comes from the CSPRNG, each 32-byte slice is handed out once (the offset
// only moves forward until the whole pool is drawn anew), and no salt is derived from another.
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

/** 32 random bytes, base64url: a row's salt. */
function freshSalt(): string {
  if (poolOffset + 32 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  poolOffset += 32;
  return pool.toString('base64url', poolOffset - 32, poolOffset);
}

/**
 * The paths of `changes` a diff's field path names: `entities[].fields.<property>` names the
 * property's value wherever a diff holds it, so it names `entities[].after.<property>` too (a
 * write by criteria, whose prior state TypeORM does not report, records the values it set there).
 *
 * @example
 * diffAliases([['entities', EACH, 'fields', 'email']]); // [['entities', EACH, 'fields', 'email'], ['entities', EACH, 'after', 'email']]
 */
export function diffAliases(paths: readonly (readonly PathStep[])[]): (readonly PathStep[])[] {
  const out = [...paths];
  for (const steps of paths) {
    if (steps[0] === 'entities' && steps[1] === EACH && steps[2] === 'fields' && steps.length > 3) {
      out.push(['entities', EACH, 'after', ...steps.slice(3)]);
    }
  }
  return out;
}

/**
 * `node` without the value at `steps` (copied along the path, never changed in place); each value
 * taken is added to `out`. Keys that hold dots are matched too: a diff keys an embedded column by
 * its property path (`person.name`), which the path `….person.name` names, whether the key is
 * `person.name` or `person` holding `name`.
 */
function take(node: unknown, steps: readonly PathStep[], i: number, path: PersonalPath, out: [PersonalPath, unknown][]): unknown {
  if (node === null || typeof node !== 'object') return node;
  const step = steps[i];
  if (step === EACH) {
    if (!Array.isArray(node)) return node;
    let copy: unknown[] | null = null;
    node.forEach((element: unknown, k) => {
      const next = take(element, steps, i + 1, [...path, k], out);
      if (next !== element) (copy ??= [...(node as unknown[])])[k] = next;
    });
    return copy ?? node;
  }
  if (Array.isArray(node)) return node;
  let object = node as Record<string, unknown>;
  let key = '';
  for (let j = i; j < steps.length && steps[j] !== EACH; j++) {
    key = j === i ? step : `${key}.${steps[j] as string}`;
    if (!Object.hasOwn(object, key)) continue;
    if (j === steps.length - 1) {
      out.push([[...path, key], object[key]]);
      object = without(object, key);
      continue;
    }
    const child = take(object[key], steps, j + 1, [...path, key], out);
    if (child !== object[key]) object = { ...object, [key]: child };
  }
  return object;
}

/**
 * A copy of `object` without `key`, its other members in the same order, an own `__proto__`
 * member (JSON.parse makes one) kept as a member. (A spread followed by `delete` leaves a slow,
 * dictionary-mode object, which the row's `JSON.stringify` then reads key by key.)
 */
function without(object: Record<string, unknown>, key: string): Record<string, unknown> {
  const { [key]: taken, ...rest } = object;
  void taken; // already among the values taken out
  return rest;
}

/**
 * Reads a `personal` column: the values of a row not erased, the marker of an erased one, or
 * null when it is not one of those (changed by hand).
 *
 * @example
 * parsePersonal('{"erased":"0190…"}'); // { erased: '0190…' }
 */
export function parsePersonal(text: string | null): PersonalValues | ErasedMarker | null {
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as Partial<PersonalValues & ErasedMarker>;
    if (typeof value?.erased === 'string' && Object.keys(value).length === 1) return { erased: value.erased };
    if (typeof value?.salt === 'string' && Array.isArray(value.values) && value.values.every(isPersonalValue)) {
      return { salt: value.salt, values: value.values };
    }
  } catch {
    // Not JSON: not written by the module.
  }
  return null;
}

/** One entry of `values` as the module writes it: a path into `changes` or `metadata`, and the value's JSON text. */
function isPersonalValue(entry: unknown): entry is [PersonalPath, string] {
  if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[1] !== 'string') return false;
  const [path, text] = entry as [unknown, string];
  if (!Array.isArray(path) || path.length < 2 || (path[0] !== 'changes' && path[0] !== 'metadata')) return false;
  if (!path.every((step) => typeof step === 'string' || (Number.isSafeInteger(step) && (step as number) >= 0))) return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads a `commitments` column: each personal value's path and commitment, or null when malformed.
 *
 * @example
 * parseCommitments('[[["user_id"],"q0Yc…"]]'); // [[['user_id'], 'q0Yc…']]
 */
export function parseCommitments(text: string | null): [PersonalPath, string][] | null {
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as unknown;
    if (Array.isArray(value) && value.every((c) => Array.isArray(c) && Array.isArray(c[0]) && typeof c[1] === 'string')) {
      return value as [PersonalPath, string][];
    }
  } catch {
    // Not JSON: changed by hand.
  }
  return null;
}
