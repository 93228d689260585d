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
/**
 * Ends a URL's authority (`user:password@host:port`): its path, query or fragment (RFC 3986), a
 * space, a double quote, an escape. An apostrophe is a character of user info (RFC 3986's
 * sub-delims) unless the URL is quoted by one.
 */
const AUTHORITY_END = /[\s/?#\\"<>]/;
// A key, its closing quote escaped any number of times (JSON encoded twice: `\"password\":`) or the
// parenthesis of PostgreSQL's `Key (token)=(…)`, its separator (`=>` of a Ruby or PHP hash), spaces
// of an aligned dump around it; ':=' is one separator, '::' (a cast) none.
// '%3D' is '=' URL-encoded (`%253D` encoded twice).
const KEY_AND_SEPARATOR = /([A-Za-z][\w.-]{0,63})\\{0,32}["')]?\s{0,64}(=>?|:(?!:)=?|%(?:25)?3[Dd])\s{0,64}/g;
/**
 * A command line's long option and the spaces before its value (`--password s3cr3t`). What starts
 * with '-' is the next option; with '=' or ':', a separator (`--password = …`), read as a key's.
 */
const CLI_OPTION = /(?<![\w-])--([A-Za-z][\w.-]{0,63})[ \t]{1,16}(?=[^\s=:-])/g;
/** Ends a command-line option's unquoted value: a space, or a quote or backslash of the text around it. */
const CLI_VALUE_END = /[\s"'\\]/;
/** PostgreSQL's detail of a NOT NULL or CHECK violation, which prints every column of the row: `Failing row contains (…).` */
const FAILING_ROW = /\bfailing row contains \(/gi;
/** What PostgreSQL writes after a failing row's values: the detail's closing '.'. */
const FAILING_ROW_END = /\.(?:$|[\s"'\\])/y;
/** The BEGIN line of a PEM private key (RFC 7468's `PRIVATE KEY`, `RSA PRIVATE KEY`, `OPENSSH PRIVATE KEY`…, OpenPGP's `PRIVATE KEY BLOCK`). */
const PEM_PRIVATE_KEY = /-----BEGIN ([A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----/g;
/** What a text without '=', ':' or '--' may hold a secret in: a URL-encoded separator, a bearer token, PostgreSQL's failing row. */
const MAY_HOLD_SECRET = /%(?:25)?3d|bearer|failing row/i;
/** The last word of a name that makes it a secret's, whatever `redactKeys` holds (`DB_PASS`, `SMTP_PASSWD`, `GH_TOKEN`). */
const SECRET_LAST_WORDS = new Set(['pass', 'passwd', 'pwd', 'secret', 'token']);
/** How a name of {@link SECRET_LAST_WORDS} ends: one test before the name is split into words. */
const SECRET_ENDING = /(?:pass|passwd|pwd|secret|token)$/i;
/** The word before a key, one space or tab apart (`API Key`, `Private Key`), read backwards from the key. */
const WORD_CHAR = /[\w.-]/;

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
  if (!text.includes('=') && !text.includes(':') && !text.includes('--') && !MAY_HOLD_SECRET.test(text)) return text;
  const cleaned = redactCliOptions(
    redactKeyDetails(redactFailingRows(redactUrlPasswords(redactPrivateKeys(text)).replace(BEARER, `$1${REDACTED}`)), isRedacted),
    isRedacted,
  );
  let out = '';
  let done = 0;
  const pairs = new RegExp(KEY_AND_SEPARATOR);
  for (let match = pairs.exec(cleaned); match !== null; match = pairs.exec(cleaned)) {
    if (!keyRedacted(cleaned, match.index, match[1], isRedacted)) continue;
    const span = secretSpan(cleaned, pairs.lastIndex, secretKind(match[1], match[2]), REDACTED, cleaned[match.index - 1] === "'");
    if (span === null) continue;
    out += `${cleaned.slice(done, span.start)}${span.before}${REDACTED}${span.after}`;
    done = span.end;
    pairs.lastIndex = span.end;
  }
  return done === 0 ? cleaned : out + cleaned.slice(done);
}

/**
 * Whether the key at `at` names a secret: itself, with the word before it (`API Key`), or, closing
 * PostgreSQL's column list (`Key (token, tenant)=(…)`), any column of that list.
 */
function keyRedacted(text: string, at: number, key: string, isRedacted: (key: string) => boolean): boolean {
  if (secretName(key, isRedacted)) return true;
  // `%3Fpin%3D…`: the key's first letter is the second digit of an escape (`%3F`, `%253F` encoded twice).
  if (/^[A-Fa-f]/.test(key) && afterEscapeDigit(text, at) && secretName(key.slice(1), isRedacted)) return true;
  const previous = wordBefore(text, at);
  if (previous !== '' && isRedacted(`${previous} ${key}`)) return true;
  if (text[at + key.length] !== ')') return false;
  let open = at - 1;
  while (open >= 0 && at - open <= MAX_COLUMN_LIST && text[open] !== '(') open -= 1;
  if (open < 0 || text[open] !== '(') return false;
  return text
    .slice(open + 1, at)
    .split(/[\s,]+/)
    .some((column) => column !== '' && isRedacted(column));
}

/** Whether `key` names a secret: by `redactKeys`, or as a name of two words or more whose last word is one of {@link SECRET_LAST_WORDS}. */
function secretName(key: string, isRedacted: (key: string) => boolean): boolean {
  if (isRedacted(key)) return true;
  if (!SECRET_ENDING.test(key)) return false;
  const keyWords = words(key);
  return keyWords.length >= 2 && SECRET_LAST_WORDS.has(keyWords[keyWords.length - 1]);
}

/** Whether `text[at]` is the second hex digit of a percent escape (`%3F`, or `%253F` encoded twice). */
function afterEscapeDigit(text: string, at: number): boolean {
  if (!/[0-9A-Fa-f]/.test(text[at - 1] ?? '')) return false;
  return text[at - 2] === '%' || (text[at - 4] === '%' && text[at - 3] === '2' && text[at - 2] === '5');
}

/**
 * How far back from a key's `)` the `(` of a column list is looked for, when the list is closed by
 * a key and its separator (`(id, token)=x`) rather than by a key detail's `)=(`, which is read whole.
 */
const MAX_COLUMN_LIST = 256;

/** The word that ends one space or tab before `at` (at most 64 characters of it), or '' when there is none. */
function wordBefore(text: string, at: number): string {
  const end = at - 1;
  if (end < 1 || (text[end] !== ' ' && text[end] !== '\t')) return '';
  let start = end;
  while (start > 0 && end - start < 64 && WORD_CHAR.test(text[start - 1])) start -= 1;
  return text.slice(start, end);
}

function secretKind(key: string, separator: string): SecretKind {
  if (separator.startsWith('%')) return 'encoded';
  const compact = compactKey(key);
  if (compact.includes('cookie')) return separator === ':' ? 'cookie-header' : 'cookie';
  if (!compact.includes('authorization')) return 'plain';
  return separator === ':' ? 'authorization' : 'authorization-field';
}

/** Where a PostgreSQL key detail's column list closes and its value list opens: `Key (token)=(…)`. */
const KEY_DETAIL = ')=(';
/**
 * What PostgreSQL writes after a key detail's value list (`Key (…)=(…) already exists.`, `is not
 * present in table`, `is still referenced from table`, `is duplicated`, `conflicts with existing
 * key (…)=(…).`): the ')' before it is the one that closes the values, which PostgreSQL writes
 * unescaped, so a value may hold a ')'.
 */
const KEY_DETAIL_END = / (?:already exists|is not present|is still referenced|is duplicated|conflicts with)|\.(?:$|[\s"'\\])/y;

/**
 * PostgreSQL's key details, `Key (<columns>)=(<values>) already exists.`: the values become
 * `[REDACTED]` when any identifier of the column list is a secret, a quoted one (`"apiToken"`, as
 * TypeORM names a camelCase column) or one in an expression (`lower(token)`, `(data ->> 'token')`).
 * The column list is looked for back to its opening however long it is (an expression index's
 * columns are written deparsed, with their casts), never past the detail before it, so each
 * character is read back once at most; the values run to the ')' before what PostgreSQL writes
 * after them, across line breaks, or to the end of the text.
 */
function redactKeyDetails(text: string, isRedacted: (key: string) => boolean): string {
  if (!text.includes(KEY_DETAIL)) return text;
  let out = '';
  let done = 0;
  let floor = 0;
  for (let at = text.indexOf(KEY_DETAIL); at >= 0; at = text.indexOf(KEY_DETAIL, floor)) {
    const open = columnListStart(text, at, floor);
    floor = at + 3;
    // PostgreSQL writes the list after a word and a space (`Key (`, `existing key (`, `contains (`);
    // one holding the marker was redacted already, as a value of another key.
    if (open < 0 || /[\w=]/.test(text[open - 1] ?? '')) continue;
    const columns = text.slice(open + 1, at);
    if (columns.includes(REDACTED) || !columnsRedacted(columns, isRedacted)) continue;
    const end = keyValuesEnd(text, at + 2);
    out += `${text.slice(done, at + 2)}${REDACTED}`;
    done = floor = end;
  }
  return done === 0 ? text : out + text.slice(done);
}

/** The '(' that opens the column list closed at `close`, looked for back to `lowest`, or -1. */
function columnListStart(text: string, close: number, lowest: number): number {
  let depth = 0;
  for (let i = close; i >= lowest; i--) {
    if (text[i] === ')') depth += 1;
    else if (text[i] === '(' && --depth === 0) return i;
  }
  return -1;
}

/** Whether a name in a key detail's column list is a secret: a quoted name whole, else each word. */
function columnsRedacted(columns: string, isRedacted: (key: string) => boolean): boolean {
  let i = 0;
  while (i < columns.length) {
    const char = columns[i];
    let name = '';
    if (char === '"' || char === "'") {
      const close = columns.indexOf(char, i + 1);
      const end = close < 0 ? columns.length : close;
      name = columns.slice(i + 1, end).replaceAll('\\', '');
      i = end + 1;
    } else if (/[A-Za-z_]/.test(char)) {
      let end = i + 1;
      while (end < columns.length && /[\w$]/.test(columns[end])) end += 1;
      name = columns.slice(i, end);
      i = end;
    } else {
      i += 1;
      continue;
    }
    if (name !== '' && isRedacted(name)) return true;
  }
  return false;
}

/**
 * Just past the ')' that closes the value list opened at `open`: the first ')' followed by what
 * PostgreSQL writes after the values (see {@link KEY_DETAIL_END}), read across line breaks (a value
 * is written unescaped, a line break included); the end of the text when there is none (a detail
 * cut short, or one the text holds no ending of).
 */
function keyValuesEnd(text: string, open: number): number {
  for (let close = text.indexOf(')', open); close >= 0; close = text.indexOf(')', close + 1)) {
    KEY_DETAIL_END.lastIndex = close + 1;
    if (KEY_DETAIL_END.test(text)) return close + 1;
  }
  return text.length;
}

/**
 * PostgreSQL's `Failing row contains (…).`: every value of the row becomes `[REDACTED]`, whatever
 * its column. The values are written unescaped (line breaks, `).` included) and the detail's own
 * ending is only a ')' and a '.', so they run to the last such ending before the next failing row
 * or the end of the text; with none, to there.
 */
function redactFailingRows(text: string): string {
  if (!/failing row/i.test(text)) return text;
  const opens: number[] = [];
  const rows = new RegExp(FAILING_ROW);
  for (let match = rows.exec(text); match !== null; match = rows.exec(text)) opens.push(rows.lastIndex - 1);
  if (opens.length === 0) return text;
  let out = '';
  let done = 0;
  for (let i = 0; i < opens.length; i++) {
    const limit = i + 1 < opens.length ? opens[i + 1] : text.length;
    let end = limit;
    for (let close = text.indexOf(')', opens[i]); close >= 0 && close < limit; close = text.indexOf(')', close + 1)) {
      FAILING_ROW_END.lastIndex = close + 1;
      if (FAILING_ROW_END.test(text)) end = close + 1;
    }
    out += `${text.slice(done, opens[i])}${REDACTED}`;
    done = end;
  }
  return out + text.slice(done);
}

/**
 * A PEM private key's body, between its BEGIN and END lines (to the end of the text when it has no
 * END line), becomes `[REDACTED]`; the two lines stay.
 */
function redactPrivateKeys(text: string): string {
  if (!text.includes('PRIVATE KEY')) return text;
  let out = '';
  let done = 0;
  const begins = new RegExp(PEM_PRIVATE_KEY);
  for (let match = begins.exec(text); match !== null; match = begins.exec(text)) {
    const bodyStart = begins.lastIndex;
    const endLine = `-----END ${match[1]}-----`;
    const endAt = text.indexOf(endLine, bodyStart);
    out += `${text.slice(done, bodyStart)}${REDACTED}`;
    done = endAt < 0 ? text.length : endAt;
    begins.lastIndex = endAt < 0 ? text.length : endAt + endLine.length;
  }
  return done === 0 ? text : out + text.slice(done);
}

/**
 * A command line's long option that names a secret, and its value after spaces: `--password
 * s3cr3t` → `--password [REDACTED]`, a quoted value read whole, an unquoted one to the next space.
 * (`--password=s3cr3t` is a key and its separator, read by {@link redactText}.)
 */
function redactCliOptions(text: string, isRedacted: (key: string) => boolean): string {
  if (!text.includes('--')) return text;
  let out = '';
  let done = 0;
  const options = new RegExp(CLI_OPTION);
  for (let match = options.exec(text); match !== null; match = options.exec(text)) {
    const start = options.lastIndex;
    if (!secretName(match[1], isRedacted) || text.startsWith(REDACTED, start)) continue;
    // A quoted value is read as a key's is (escaped quotes inside, never closed: to the end).
    const quoted = text[start] === '"' || text[start] === "'" ? secretSpan(text, start, 'plain', REDACTED) : null;
    let end = start;
    if (quoted !== null) {
      out += `${text.slice(done, start)}${quoted.before}${REDACTED}${quoted.after}`;
      end = quoted.end;
    } else {
      while (end < text.length && !CLI_VALUE_END.test(text[end])) end += 1;
      out += `${text.slice(done, start)}${REDACTED}`;
    }
    done = options.lastIndex = end;
  }
  return done === 0 ? text : out + text.slice(done);
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
    const from = starts.lastIndex;
    let end = from;
    let colon = -1;
    let at = -1;
    // Quoted by apostrophes, the URL ends at one; two stand for one inside it (SQL's `'it''s'`).
    const quoted = text[match.index - 1] === "'";
    for (; end < text.length && !AUTHORITY_END.test(text[end]); end++) {
      if (text[end] === "'" && quoted && text[++end] !== "'") {
        end -= 1;
        break;
      }
      if (text[end] === '@') at = end;
      else if (text[end] === ':' && colon < 0) colon = end;
    }
    if (colon >= 0 && at > colon + 1) {
      out += `${text.slice(done, colon + 1)}${REDACTED}`;
      done = at;
    }
    // An authority that ends at the next URL's '://' (`…@h1,redis://:pw@h2`) took that URL's scheme: look for it again.
    const intoNextUrl = text[end - 1] === ':' && text.startsWith('//', end);
    starts.lastIndex = intoNextUrl ? Math.max(from, end - 65) : end;
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
