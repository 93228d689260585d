// Where a secret written into free text ends. Every input is a client's: each scan moves forward
// only, and what it passed is never read again, so a text is read in time linear in its size.

/** Ends an unquoted value: a space, a quote, or a delimiter (':' and '=' are part of it). */
const VALUE_END = /[\s",;&)}\]]/;
/** A credential's characters (RFC 9110 token68, without its '=' padding). */
const TOKEN68 = /[\w\-.~+/]/;
/** '&' URL-encoded once or twice, at the start of the text it is tried on. */
const ENCODED_AMPERSAND = /^%(?:25)?26/;
/** Ends an unquoted auth-param value (`realm=x, nonce=y`). */
const PARAM_END = /[\s,"]/;
/** A line that starts with its own `key:` or `key=` is no continuation of the value before it. */
const LINE_KEY = /[A-Za-z][\w.-]{0,63}\\{0,32}["')]?[ \t]{0,64}[=:]/y;
/** A line that starts with its own header or YAML key (`Host:`) is no continuation of a header's value. */
const LINE_HEADER = /[A-Za-z][\w.-]{0,63}\\{0,32}["')]?[ \t]{0,64}:(?!=)/y;
/** Schemes whose credential follows them (IANA's HTTP authentication schemes, and common others). */
const AUTH_SCHEMES = new Set([
  'apikey',
  'aws',
  'aws4-hmac-sha256',
  'basic',
  'bearer',
  'concealed',
  'digest',
  'dpop',
  'gnap',
  'hawk',
  'hoba',
  'kerberos',
  'mutual',
  'negotiate',
  'ntlm',
  'oauth',
  'privatetoken',
  'scram-sha-1',
  'scram-sha-256',
  'sharedkey',
  'sharedkeylite',
  'token',
  'vapid',
]);
/** A quote after more backslashes than this is read as text (a string JSON-encoded five times holds 31). */
const MAX_ESCAPES = 32;
/** Spaces skipped between a scheme and its credential, or between the items of a list. */
const MAX_GAP = 16;

/**
 * How a redacted key's value is read: a Cookie or Set-Cookie header's (`cookie-header`, after
 * ':') is the rest of its line and folded lines, whatever its cookies and attributes hold (an
 * `Expires` date's comma, cookies joined by `, `); a cookie field's (`cookie`, after '=') its list
 * of cookies; an Authorization header's (`authorization`, after ':') the rest of its line and
 * folded lines, as is a form or query field's of that name (`authorization-field`, after '='),
 * which also ends at '&'; a URL-encoded field's (`encoded`, after `%3D`) its value, up to an
 * encoded '&' (`%26`).
 */
export type SecretKind = 'plain' | 'cookie' | 'cookie-header' | 'authorization' | 'authorization-field' | 'encoded';

/**
 * The part of a text a redacted key's value takes: `text[start, end)` becomes
 * `before + [REDACTED] + after` (the quotes around it are kept, as is a known scheme before it).
 */
export interface SecretSpan {
  start: number;
  end: number;
  before: string;
  after: string;
}

/**
 * The value that starts at `start`, after a redacted key and its separator: a quoted string (its
 * quotes escaped any number of times, with escaped quotes inside), a bracketed list or object, or
 * an unquoted word (continued on a folded line); for a Cookie header, every cookie of the list;
 * after an auth scheme, the credential too. Null when no value starts there, or when `marker`
 * already stands for the credential after a scheme (the text was redacted before).
 *
 * @example
 * secretSpan('Authorization: Basic b3BzOnB3', 15, 'authorization', '[REDACTED]'); // { start: 21, end: 29, before: '', after: '' }
 */
export function secretSpan(text: string, start: number, kind: SecretKind, marker: string, inApostrophes = false): SecretSpan | null {
  const open = openingQuote(text, start);
  if (open !== null) {
    const token = text.slice(start, open.contentStart);
    return { start, end: quotedEnd(text, open.contentStart, open.quote, open.escapes), before: token, after: token };
  }
  if (OPENERS.includes(text[start])) return { start, end: bracketedEnd(text, start), before: '', after: '' };
  if (kind === 'authorization' || kind === 'authorization-field') return authorizationSpan(text, start, kind, marker, inApostrophes);
  if (kind === 'encoded') {
    const end = encodedValueEnd(text, start);
    return end > start ? { start, end, before: '', after: '' } : null;
  }
  if (kind === 'cookie-header') {
    // A cookie's quoted value never closed ends with its line.
    const end = headerValueEnd(text, start, false, inApostrophes, true);
    return end > start ? { start, end, before: '', after: '' } : null;
  }
  // A scheme is the value's first word, before any folded line: a credential folded under it is read after it.
  const word = wordEnd(text, start);
  if (isScheme(text, start, word)) {
    const credential = skipGap(text, word);
    if (text.startsWith(marker, credential)) return null;
    const credentialEnd = authCredentialEnd(text, credential);
    if (credentialEnd > credential) return { start: credential, end: credentialEnd, before: '', after: '' };
  }
  const end = kind === 'cookie' ? cookieListEnd(text, start) : unquotedEnd(text, start);
  if (end === start) return null;
  return { start, end, before: '', after: '' };
}

/** A URL-encoded value's end: an encoded '&' (`%26`, `%2526` encoded twice), or an unquoted value's end. */
function encodedValueEnd(text: string, start: number): number {
  let i = start;
  while (i < text.length && !VALUE_END.test(text[i])) {
    if (text[i] === '%' && ENCODED_AMPERSAND.test(text.slice(i, i + 5))) break;
    i += 1;
  }
  return i;
}

function isScheme(text: string, start: number, end: number): boolean {
  return end - start <= 32 && AUTH_SCHEMES.has(text.slice(start, end).toLowerCase());
}

/**
 * An Authorization header's value: whatever its scheme writes after it (`AWS <key id>:<signature>`,
 * a credential of several words, one folded on the next line), so the rest of the header goes. A
 * known scheme's name stays before it; null when it has no credential, or has `marker` for one.
 */
function authorizationSpan(text: string, start: number, kind: SecretKind, marker: string, inApostrophes: boolean): SecretSpan | null {
  const word = wordEnd(text, start);
  // A scheme's name is followed by a space or a folded line before its credential (`Basic,x` is no scheme).
  const gap = headerGap(text, word);
  const atLineEnd = word >= text.length || text[word] === '\r' || text[word] === '\n';
  const valueStart = isScheme(text, start, word) && (gap > word || atLineEnd) ? gap : start;
  if (valueStart > start && text.startsWith(marker, valueStart)) return null;
  const end = headerValueEnd(text, valueStart, kind === 'authorization-field', inApostrophes);
  return end > valueStart ? { start: valueStart, end, before: '', after: '' } : null;
}

/** Past the spaces or tabs after a scheme, and a line break that folds the header onto the next line. */
function headerGap(text: string, at: number): number {
  let i = at;
  while (i < text.length && i - at < MAX_GAP && (text[i] === ' ' || text[i] === '\t')) i += 1;
  const folded = text[i] === '\r' || text[i] === '\n' ? foldedLine(text, i) : -1;
  return folded < 0 ? i : folded;
}

/**
 * The end of a header's value that starts at `start`: its line's end, its folded lines read on.
 * It ends earlier at a double quote of the surrounding text, or an apostrophe when the header's
 * name was quoted by one (`-H 'Authorization: …'`) (a quote after '=' opens an auth-param's quoted
 * value, read whole, or to its line's end when `lineBoundQuotes`), at a closing bracket it did not
 * open, and at '&' when `field`. Spaces before the end are left out.
 */
function headerValueEnd(text: string, start: number, field: boolean, inApostrophes: boolean, lineBoundQuotes = false): number {
  let end = start;
  let afterEquals = false;
  let depth = 0;
  let i = start;
  while (i < text.length) {
    const char = text[i];
    if (char === '\r' || char === '\n') {
      const next = foldedLine(text, i);
      if (next < 0) break;
      i = next;
      continue;
    }
    if (char === ' ' || char === '\t') {
      i += 1;
      continue;
    }
    if (char === '"' || char === "'" || char === '\\') {
      const open = openingQuote(text, i);
      if (open === null) {
        let j = i;
        while (j < text.length && text[j] === '\\') j += 1;
        // `\n` of an encoded text ends the line; other backslashes are the value's.
        if (text[j] === 'n' || text[j] === 'r') break;
        i = end = j;
        afterEquals = false;
        continue;
      }
      // A double quote closes the surrounding text's string; an apostrophe only closes the one that
      // opened before the header's name, and not inside a word (`isn't`).
      const apostrophe = open.quote === "'" && (!inApostrophes || (open.escapes === 0 && /\w/.test(text[open.contentStart] ?? '')));
      if (!afterEquals && !apostrophe) break;
      if (!afterEquals) {
        i = end = open.contentStart;
        continue;
      }
      i = quotedEnd(text, open.contentStart, open.quote, open.escapes, lineBoundQuotes);
      end = i;
      afterEquals = false;
      continue;
    }
    if (OPENERS.includes(char)) depth += 1;
    else if (char === ')' || char === ']' || char === '}') {
      if (depth === 0) break;
      depth -= 1;
    } else if (char === '&' && field) break;
    afterEquals = char === '=';
    i += 1;
    end = i;
  }
  return end;
}

/** Where a header folded at the line break at `at` goes on (an indented line that names no header of its own), else -1. */
function foldedLine(text: string, at: number): number {
  let i = text[at] === '\r' ? at + 1 : at;
  if (text[i] === '\n') i += 1;
  const indent = i;
  while (i < text.length && i - indent < MAX_GAP && (text[i] === ' ' || text[i] === '\t')) i += 1;
  if (i === indent || i >= text.length || text[i] === '\r' || text[i] === '\n') return -1;
  LINE_HEADER.lastIndex = i;
  return LINE_HEADER.test(text) ? -1 : i;
}

/** Where a bracketed value opens: a JSON list or object, PostgreSQL's `(…)` of a key detail. */
const OPENERS = '[{(';

/** Where a value's first word ends, on its own line. */
function wordEnd(text: string, start: number): number {
  let end = start;
  while (end < text.length && !VALUE_END.test(text[end])) end += 1;
  return end;
}

/** A quote at `at` after at most {@link MAX_ESCAPES} backslashes, the string's content starting after it. */
function openingQuote(text: string, at: number): { quote: string; escapes: number; contentStart: number } | null {
  let i = at;
  while (i < text.length && i - at < MAX_ESCAPES && text[i] === '\\') i += 1;
  const quote = text[i];
  return quote === '"' || quote === "'" ? { quote, escapes: i - at, contentStart: i + 1 } : null;
}

/**
 * Just past the quote that closes a string opened by `escapes` backslashes and `quote`. Each
 * encoding doubles the backslashes before a quote and adds one: at the opening's depth a quote
 * closes after `escapes` backslashes plus an even number of encoded ones (`escapes + 1` each).
 * An unclosed string runs to the end of the text, or of its line when `lineBound`.
 */
function quotedEnd(text: string, from: number, quote: string, escapes: number, lineBound = false): number {
  let run = 0;
  for (let i = from; i < text.length; i++) {
    const char = text[i];
    if (lineBound && (char === '\r' || char === '\n')) return i;
    if (char === '\\') {
      run += 1;
      continue;
    }
    if (char === quote && run >= escapes && (run - escapes) % (2 * (escapes + 1)) === 0) {
      // A quote written twice (SQL's `'it''s'`, CSV's) stands for one, inside the string.
      if (escapes === 0 && run === 0 && text[i + 1] === quote) {
        i += 1;
        continue;
      }
      return i + 1;
    }
    run = 0;
  }
  return text.length;
}

/** Just past the bracket that closes the one at `start` (quoted strings skipped), or the end of the text. */
function bracketedEnd(text: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < text.length) {
    const char = text[i];
    if (OPENERS.includes(char)) depth += 1;
    else if ((char === ']' || char === '}' || char === ')') && --depth === 0) return i + 1;
    else if (char === '"' || char === "'" || char === '\\') {
      const open = openingQuote(text, i);
      if (open !== null) {
        i = quotedEnd(text, open.contentStart, open.quote, open.escapes);
        continue;
      }
      while (i < text.length && text[i] === '\\') i += 1;
      continue;
    }
    i += 1;
  }
  return text.length;
}

/** The end of an unquoted value, read on across folded lines (a line break then spaces, as in an HTTP header). */
function unquotedEnd(text: string, start: number): number {
  let end = start;
  for (;;) {
    while (end < text.length && !VALUE_END.test(text[end])) end += 1;
    const next = end === start ? -1 : continuedLine(text, end);
    if (next < 0) return end;
    end = next;
  }
}

/** Where the value goes on when a line break at `at` is followed by an indented line that names no key of its own, else -1. */
function continuedLine(text: string, at: number): number {
  let i = text[at] === '\r' ? at + 1 : at;
  if (text[i] !== '\n') return -1;
  const indent = (i += 1);
  while (i < text.length && i - indent < MAX_GAP && (text[i] === ' ' || text[i] === '\t')) i += 1;
  if (i === indent || i >= text.length || VALUE_END.test(text[i])) return -1;
  LINE_KEY.lastIndex = i;
  return LINE_KEY.test(text) ? -1 : i;
}

/** A Cookie header's value: `a=1; b=2`, every cookie of it. */
function cookieListEnd(text: string, start: number): number {
  let end = cookieEnd(text, start);
  while (end > start && text[end] === ';') {
    const next = skipGap(text, end + 1);
    if (next >= text.length || VALUE_END.test(text[next])) return end;
    end = cookieEnd(text, next);
  }
  return end;
}

/** One cookie, `name=value` or `name="value"` (RFC 6265): a quoted value never closed runs to its line's end. */
function cookieEnd(text: string, start: number): number {
  let equals = start;
  while (equals < text.length && text[equals] !== '=' && text[equals] !== '\\' && !VALUE_END.test(text[equals])) equals += 1;
  const open = text[equals] === '=' ? openingQuote(text, equals + 1) : null;
  if (open === null) return unquotedEnd(text, start);
  const end = quotedEnd(text, open.contentStart, open.quote, open.escapes, true);
  return end < text.length && !VALUE_END.test(text[end]) ? unquotedEnd(text, end) : end;
}

function skipGap(text: string, at: number): number {
  let i = at;
  while (i < text.length && i - at < MAX_GAP && /\s/.test(text[i])) i += 1;
  return i;
}

/** The end of the credential after an auth scheme: a token68 (`dXNlcjpwYXNz==`) or a list of auth-params (`username="a", response="b"`). */
function authCredentialEnd(text: string, start: number): number {
  let i = start;
  // `<key id>:<signature>` (AWS, Azure's SharedKey) is one credential.
  while (i < text.length && (TOKEN68.test(text[i]) || (text[i] === ':' && i > start && TOKEN68.test(text[i + 1] ?? '')))) i += 1;
  if (i === start) return start;
  let padded = i;
  while (padded < text.length && text[padded] === '=') padded += 1;
  const paramValue =
    (padded === i + 1 && padded < text.length && !/\s/.test(text[padded]) && text[padded] !== ',') ||
    equalsAfterSpaces(text, i) > 0 ||
    (padded === i + 1 && text[skipSpaces(text, padded)] === '"');
  return paramValue ? authParamsEnd(text, start) : padded;
}

function skipSpaces(text: string, at: number): number {
  let i = at;
  while (i < text.length && i - at < MAX_GAP && (text[i] === ' ' || text[i] === '\t')) i += 1;
  return i;
}

/** Just past an '=' that follows `at` after one space or more (an auth-param's `name = value`), else -1. */
function equalsAfterSpaces(text: string, at: number): number {
  const i = skipSpaces(text, at);
  return i > at && text[i] === '=' ? i + 1 : -1;
}

/** The end of a list of `name=value` or `name="value"` (spaces allowed around '='), separated by commas. */
function authParamsEnd(text: string, start: number): number {
  let end = start;
  let i = start;
  for (;;) {
    let j = i;
    while (j < text.length && TOKEN68.test(text[j])) j += 1;
    if (j === i) return end;
    j = skipSpaces(text, j);
    if (text[j] !== '=') return end;
    j = skipSpaces(text, j + 1);
    const open = openingQuote(text, j);
    if (open !== null) j = quotedEnd(text, open.contentStart, open.quote, open.escapes);
    else while (j < text.length && !PARAM_END.test(text[j])) j += 1;
    end = j;
    while (j < text.length && j - end < MAX_GAP && (text[j] === ' ' || text[j] === '\t')) j += 1;
    if (text[j] !== ',') return end;
    i = skipGap(text, j + 1);
  }
}
