import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { AuditConfigError } from '../audit.errors';

/**
 * The `privacy` option of `AuditModule.forRoot()` (docs/PRIVACY.md). Given at all, every new row
 * keeps its personal values apart, each committed to (row encoding version 2), so that
 * `AuditService.erase()` can remove them without breaking a seal or an entry code.
 *
 * @example
 * AuditModule.forRoot({ privacy: { personalData: ['changes.body.email', 'metadata.ip'], pseudonymKey: process.env.AUDIT_PSEUDONYM_KEY } });
 */
export interface AuditPrivacyOptions {
  /**
   * Paths of personal values inside `changes` or `metadata`, besides the actor's `user_id`, `ip`
   * and `user_agent` (always personal): `changes.body.email`, `changes.entities[].fields.email`
   * (`[]`: every element of that array), `metadata.ip`.
   */
  personalData?: string[];
  /**
   * A secret (at least 32 characters) that makes pseudonyms: of the subject named in an
   * `audit_erasure` entry, and with `pseudonymizeUserId`, of every actor's id. Default: the
   * signing entry key's secret (`integrity.entryKeys[0]`). Never logged.
   */
  pseudonymKey?: string | null;
  /** Store `HMAC-SHA256(pseudonymKey, userId)` instead of the raw actor id (default false). */
  pseudonymizeUserId?: boolean;
  /** Store `userIdPseudonym(userId)` instead of the raw actor id: a stable pseudonym of your own (say, from a table you can delete a row of). */
  userIdPseudonym?: ((id: string) => string) | null;
}

/** One step of a personal path: a key, or `[]` (every element of an array). */
export type PathStep = string | typeof EACH;

/** The `[]` step of a path. */
export const EACH = Symbol('each');

/** The `privacy` option after validation. */
export interface ResolvedPrivacyOptions {
  /** True when the option was given: new rows are written with commitments (row encoding version 2). */
  enabled: boolean;
  /** The paths of `personalData`, parsed: each starts with `changes` or `metadata`. */
  paths: readonly (readonly PathStep[])[];
  /** The key of pseudonyms, or null (then the entry key's, when there is one). */
  pseudonymKey: KeyObject | null;
  /** What the actor's id is stored as, or null to store it as given. */
  userIdPseudonym: ((id: string) => string) | null;
}

/** The `privacy` option's default: off. */
export const PRIVACY_DEFAULTS: Readonly<ResolvedPrivacyOptions> = Object.freeze({
  enabled: false,
  paths: [],
  pseudonymKey: null,
  userIdPseudonym: null,
});

const PATH = /^(changes|metadata)(\[\])?((\.[^.[\]]+(\[\])?)*)\.[^.[\]]+$/;

/**
 * Validates the `privacy` option, throwing an {@link AuditConfigError} that names the bad key
 * (never a secret).
 *
 * @example
 * resolvePrivacyOptions({ personalData: ['changes.body.email'] }).paths; // [['changes', 'body', 'email']]
 */
export function resolvePrivacyOptions(input: unknown): ResolvedPrivacyOptions {
  if (input === undefined) return PRIVACY_DEFAULTS;
  if (!input || typeof input !== 'object' || Array.isArray(input)) {
    throw AuditConfigError.invalidOption('privacy', "an object such as { personalData: ['changes.body.email'] }", input);
  }
  const known = ['personalData', 'pseudonymKey', 'pseudonymizeUserId', 'userIdPseudonym'];
  const raw = input as Record<string, unknown>;
  for (const key of Object.keys(raw)) if (!known.includes(key)) throw AuditConfigError.unknownOption(`privacy.${key}`, known);
  const list = raw.personalData ?? [];
  if (!Array.isArray(list)) throw AuditConfigError.invalidOption('privacy.personalData', 'a list of paths', list);
  const paths = list.map((path: unknown, i) => {
    if (typeof path !== 'string' || !PATH.test(path)) {
      throw AuditConfigError.invalidOption(
        `privacy.personalData[${i}]`,
        "a path in changes or metadata ending with a key, such as 'changes.body.email' or 'changes.entities[].fields.email'",
        path,
      );
    }
    return parsePath(path);
  });
  let pseudonymKey: KeyObject | null = null;
  if (raw.pseudonymKey !== undefined && raw.pseudonymKey !== null) {
    if (typeof raw.pseudonymKey !== 'string' || raw.pseudonymKey.length < 32) {
      throw AuditConfigError.invalidSecret('privacy.pseudonymKey', 'a secret of at least 32 characters');
    }
    pseudonymKey = createSecretKey(Buffer.from(raw.pseudonymKey, 'utf8'));
  }
  const byKey = raw.pseudonymizeUserId ?? false;
  if (typeof byKey !== 'boolean') throw AuditConfigError.invalidOption('privacy.pseudonymizeUserId', 'a boolean', byKey);
  const own = raw.userIdPseudonym ?? null;
  if (own !== null && typeof own !== 'function') {
    throw AuditConfigError.invalidOption('privacy.userIdPseudonym', 'a function (id) => string', own);
  }
  if (byKey && own) throw AuditConfigError.invalidOption('privacy.pseudonymizeUserId', 'false when userIdPseudonym is given', byKey);
  if (byKey && !pseudonymKey) throw AuditConfigError.invalidOption('privacy.pseudonymizeUserId', 'set with privacy.pseudonymKey', byKey);
  const keyed = pseudonymKey;
  const userIdPseudonym = own ? (own as (id: string) => string) : byKey && keyed ? (id: string) => pseudonym(keyed, 'user', id) : null;
  return Object.freeze({ enabled: true, paths: Object.freeze(paths), pseudonymKey, userIdPseudonym });
}

/** `changes.entities[].fields.email` → `['changes', 'entities', EACH, 'fields', 'email']`. */
function parsePath(path: string): PathStep[] {
  const steps: PathStep[] = [];
  for (const part of path.split('.')) {
    if (part.endsWith('[]')) steps.push(part.slice(0, -2), EACH);
    else steps.push(part);
  }
  return steps;
}

/**
 * A stable pseudonym: HMAC-SHA256 with `key` over the kind and the value, base64url, prefixed
 * `p1:`. Without the key it cannot be told from a random string, nor tried against a dictionary.
 *
 * @example
 * pseudonym(key, 'user', 'u-42'); // 'p1:Q2x…'
 */
export function pseudonym(key: KeyObject, kind: string, value: string): string {
  return `p1:${createHmac('sha256', key).update(`audit-pseudonym\n${kind}\n${value}`).digest('base64url')}`;
}
