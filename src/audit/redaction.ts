import { secretSpan, type SecretKind } from './redaction-values';

/** Replaces the value under a redacted key in every sink (DB, stderr, Sentry). */
export const REDACTED = '[REDACTED]';

/**
 * Default `redactKeys`. Taken from the Sentry SDKs' defaults: `SENSITIVE_KEY_SNIPPETS` of
 * `@sentry/core` 10 (utils/data-collection/filtering-snippets) and `DEFAULT_DENYLIST` of
 * sentry-python (sentry_sdk/scrubber.py, itself from Relay's PII rules), plus `otp`, `pin` and
 * `ssn`. Each key matches names no other one does (`apikey` would be `api_key` again: separators
 * are ignored). Left out: `key` (it would hide `primaryKey`, `sortKey`…), `identity` and `sso`
 * (ordinary fields and flags), and the client-address keys (the trail records the ip on purpose).
 *
 * @example
 * AuditModule.forRoot({ redactKeys: [...DEFAULT_REDACT_KEYS, 'iban'] });
 */
export const DEFAULT_REDACT_KEYS: readonly string[] = Object.freeze([
  'password',
  'passwd',
  'pwd',
  'secret',
  'token',
  'auth',
  'authorization',
  'bearer',
  'jwt',
  'session',
  'sessid',
  'sid',
  'cookie',
  'csrf',
  'xsrf',
  'saml',
  'api_key',
  'private_key',
  'credential',
  'otp',
  'pin',
  'ssn',
]);

/** A needle this long is distinctive enough to match anywhere in a key (`accessToken` has `token`). */
const ANYWHERE_MIN_LENGTH = 5;

/**
 * Builds the key matcher. Case, `-`, `_` and spaces are ignored. A redact key of five characters
 * or more matches anywhere in a key (`accessToken` matches `token`); a shorter one only as whole
 * words of it (`pin` matches `pin`, `userPin` and `PIN_CODE`, not `shipping`; `auth` matches
 * `x-auth`, not `author`).
 *
 * @example
 * const isRedacted = compileRedactor(['token', 'pin']);
 * [isRedacted('accessToken'), isRedacted('userPin'), isRedacted('shipping')]; // [true, true, false]
 */
export function compileRedactor(redactKeys: readonly string[]): (key: string) => boolean {
  // One matcher per key list: the module's parts share it, and json-safe knows a value it converted by it.
  const id = JSON.stringify(redactKeys);
  let matcher = compiled.get(id);
  if (!matcher) {
    matcher = buildRedactor(redactKeys);
    if (compiled.size < 100) compiled.set(id, matcher);
  }
  return matcher;
}

const compiled = new Map<string, (key: string) => boolean>();

function buildRedactor(redactKeys: readonly string[]): (key: string) => boolean {
  const anywhere: string[] = [];
  const wordRuns: string[][] = [];
  for (const redactKey of redactKeys) {
    const compact = compactKey(redactKey);
    const run = words(redactKey);
    if (compact.length >= ANYWHERE_MIN_LENGTH || run.length === 0) {
      if (compact.length > 0) anywhere.push(compact);
    } else {
      wordRuns.push(run);
    }
  }
  // Entries repeat the same keys: remember each answer (bounded, so hostile keys cannot grow it).
  const known = new Map<string, boolean>();
  return (key) => {
    let redacted = known.get(key);
    if (redacted === undefined) {
      const compact = compactKey(key);
      redacted = anywhere.some((needle) => compact.includes(needle));
      if (!redacted && wordRuns.length > 0) {
        const keyWords = words(key);
        redacted = wordRuns.some((run) => containsRun(keyWords, run));
      }
      if (known.size < 10_000) known.set(key, redacted);
    }
    return redacted;
  };
}

const BEARER = /\b(bearer\s+)[\w\-.~+/]{8,}=*/gi;
// A scheme of at most 64 characters (RFC 3986 names none near it): each start looks that far at
// most, so a long run of scheme characters is read in one pass, not once from each position.
const URL_START = /\b[a-z][a-z\d+.-]{0,63}:\/\//gi;
/** Ends a URL's authority (`user:password@host:port`): its path, a space, a quote, an escape. */
const AUTHORITY_END = /[\s/\\"'<>]/;
// A key, its closing quote escaped any number of times (JSON encoded twice: `\"password\":`), its separator.
const KEY_AND_SEPARATOR = /([A-Za-z][\w.-]{0,63})\\{0,32}["']?\s{0,8}[=:]\s{0,8}/g;

/**
 * Redacts secrets written into free text, such as an error message: the value after a redacted
 * key (`password=…`, `token: "…"`, however often the text was JSON-encoded), the credential after
 * an auth scheme (`Authorization: Basic …`), every cookie of a `Cookie:` line, a bearer token, the
 * password of a URL.
 *
 * @example
 * redactText('login failed: password=hunter2', compileRedactor(['password'])); // 'login failed: password=[REDACTED]'
 */
export function redactText(text: string, isRedacted: (key: string) => boolean): string {
  if (!text.includes('=') && !text.includes(':') && !/bearer/i.test(text)) return text;
  const cleaned = redactUrlPasswords(text).replace(BEARER, `$1${REDACTED}`);
  let out = '';
  let done = 0;
  const pairs = new RegExp(KEY_AND_SEPARATOR);
  for (let match = pairs.exec(cleaned); match !== null; match = pairs.exec(cleaned)) {
    if (!isRedacted(match[1])) continue;
    const span = secretSpan(cleaned, pairs.lastIndex, secretKind(match[1]), REDACTED);
    if (span === null) continue;
    out += `${cleaned.slice(done, span.start)}${span.before}${REDACTED}${span.after}`;
    done = span.end;
    pairs.lastIndex = span.end;
  }
  return done === 0 ? cleaned : out + cleaned.slice(done);
}

function secretKind(key: string): SecretKind {
  const compact = compactKey(key);
  return compact.includes('cookie') ? 'cookie' : compact.includes('authorization') ? 'authorization' : 'plain';
}

/**
 * `postgres://ops:p@ss@db/app` → `postgres://ops:[REDACTED]@db/app`: the user info ends at the
 * last '@' of the authority, as URL parsers and database drivers read it, and the password is what
 * follows its first ':'.
 */
function redactUrlPasswords(text: string): string {
  if (!text.includes('://')) return text;
  let out = '';
  let done = 0;
  const starts = new RegExp(URL_START);
  for (let match = starts.exec(text); match !== null; match = starts.exec(text)) {
    let end = starts.lastIndex;
    let colon = -1;
    let at = -1;
    for (; end < text.length && !AUTHORITY_END.test(text[end]); end++) {
      if (text[end] === '@') at = end;
      else if (text[end] === ':' && colon < 0) colon = end;
    }
    if (colon >= 0 && at > colon + 1) {
      out += `${text.slice(done, colon + 1)}${REDACTED}`;
      done = at;
    }
    starts.lastIndex = end;
  }
  return done === 0 ? text : out + text.slice(done);
}

function compactKey(key: string): string {
  return key.toLowerCase().replace(/[-_\s]/g, '');
}

/**
 * `x-API-Key2` → `['x', 'api', 'key', '2']`: camelCase, acronyms (`APIKey` → `api`, `key`),
 * separators and digits split. One pass over the key, whatever its length (it may come from a
 * client's body).
 */
function words(key: string): string[] {
  const out: string[] = [];
  let word = '';
  for (let i = 0; i < key.length; i++) {
    const kind = charKind(key[i]);
    if (kind === 'other') {
      if (word) out.push(word);
      word = '';
      continue;
    }
    const previous = word ? charKind(key[i - 1]) : 'other';
    const acronymEnds = previous === 'upper' && kind === 'upper' && charKind(key[i + 1] ?? '') === 'lower';
    const boundary =
      (kind === 'upper' && (previous === 'lower' || previous === 'digit' || acronymEnds)) ||
      (kind === 'digit' && (previous === 'lower' || previous === 'upper')) ||
      (kind !== 'digit' && previous === 'digit');
    if (boundary && word) {
      out.push(word);
      word = '';
    }
    word += key[i].toLowerCase();
  }
  if (word) out.push(word);
  return out;
}

function charKind(char: string): 'upper' | 'lower' | 'digit' | 'other' {
  if (char >= 'A' && char <= 'Z') return 'upper';
  if (char >= 'a' && char <= 'z') return 'lower';
  if (char >= '0' && char <= '9') return 'digit';
  return 'other';
}

function containsRun(keyWords: string[], run: string[]): boolean {
  for (let i = 0; i + run.length <= keyWords.length; i++) {
    if (run.every((word, j) => keyWords[i + j] === word)) return true;
  }
  return false;
}
