// Where a secret written into free text ends. Every input is a client's: each scan moves forward
// only, and what it passed is never read again, so a text is read in time linear in its size.

/** Ends an unquoted value: a space, a quote, or a delimiter (':' and '=' are part of it). */
const VALUE_END = /[\s",;&)}\]]/;
/** A credential's characters (RFC 9110 token68, without its '=' padding). */
const TOKEN68 = /[\w\-.~+/]/;
/** Ends an unquoted auth-param value (`realm=x, nonce=y`). */
const PARAM_END = /[\s,"]/;
/** A line that starts with its own `key:` or `key=` is no continuation of the value before it. */
const LINE_KEY = /[A-Za-z][\w.-]{0,63}\\{0,32}["']?[ \t]{0,8}[=:]/y;
/** Schemes whose credential follows them (IANA's HTTP authentication schemes, and common others). */
const AUTH_SCHEMES = new Set([
  'apikey',
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
  'token',
  'vapid',
]);
/** A quote after more backslashes than this is read as text (a string JSON-encoded five times holds 31). */
const MAX_ESCAPES = 32;
/** Spaces skipped between a scheme and its credential, or between the items of a list. */
const MAX_GAP = 16;

/** How a redacted key's value is read: a Cookie header's is its whole list, an Authorization header's its scheme and credential. */
export type SecretKind = 'plain' | 'cookie' | 'authorization';

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
export function secretSpan(text: string, start: number, kind: SecretKind, marker: string): SecretSpan | null {
  const open = openingQuote(text, start);
  if (open !== null) {
    const token = text.slice(start, open.contentStart);
    return { start, end: quotedEnd(text, open.contentStart, open.quote, open.escapes), before: token, after: token };
  }
  if (text[start] === '[' || text[start] === '{') return { start, end: bracketedEnd(text, start), before: '', after: '' };
  const end = kind === 'cookie' ? cookieListEnd(text, start) : unquotedEnd(text, start);
  if (end === start) return null;
  const known = end - start <= 32 && AUTH_SCHEMES.has(text.slice(start, end).toLowerCase());
  if (known || kind === 'authorization') {
    const credential = skipGap(text, end);
    if (known && text.startsWith(marker, credential)) return null;
    const credentialEnd = authCredentialEnd(text, credential);
    // A known scheme stays readable; any other first word of an Authorization value may be the secret itself.
    if (credentialEnd > credential) return { start: known ? credential : start, end: credentialEnd, before: '', after: '' };
  }
  return { start, end, before: '', after: '' };
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
 * An unclosed string runs to the end of the text.
 */
function quotedEnd(text: string, from: number, quote: string, escapes: number): number {
  let run = 0;
  for (let i = from; i < text.length; i++) {
    const char = text[i];
    if (char === '\\') {
      run += 1;
      continue;
    }
    if (char === quote && run >= escapes && (run - escapes) % (2 * (escapes + 1)) === 0) return i + 1;
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
    if (char === '[' || char === '{') depth += 1;
    else if ((char === ']' || char === '}') && --depth === 0) return i + 1;
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
  let end = unquotedEnd(text, start);
  while (end > start && text[end] === ';') {
    const next = skipGap(text, end + 1);
    if (next >= text.length || VALUE_END.test(text[next])) return end;
    end = unquotedEnd(text, next);
  }
  return end;
}

function skipGap(text: string, at: number): number {
  let i = at;
  while (i < text.length && i - at < MAX_GAP && /\s/.test(text[i])) i += 1;
  return i;
}

/** The end of the credential after an auth scheme: a token68 (`dXNlcjpwYXNz==`) or a list of auth-params (`username="a", response="b"`). */
function authCredentialEnd(text: string, start: number): number {
  let i = start;
  while (i < text.length && TOKEN68.test(text[i])) i += 1;
  if (i === start) return start;
  let padded = i;
  while (padded < text.length && text[padded] === '=') padded += 1;
  const paramValue = padded === i + 1 && padded < text.length && !/\s/.test(text[padded]) && text[padded] !== ',';
  return paramValue ? authParamsEnd(text, start) : padded;
}

/** The end of a list of `name=value` or `name="value"`, separated by commas. */
function authParamsEnd(text: string, start: number): number {
  let end = start;
  let i = start;
  for (;;) {
    let j = i;
    while (j < text.length && TOKEN68.test(text[j])) j += 1;
    if (j === i || text[j] !== '=') return end;
    j += 1;
    const open = openingQuote(text, j);
    if (open !== null) j = quotedEnd(text, open.contentStart, open.quote, open.escapes);
    else while (j < text.length && !PARAM_END.test(text[j])) j += 1;
    end = j;
    while (j < text.length && j - end < MAX_GAP && (text[j] === ' ' || text[j] === '\t')) j += 1;
    if (text[j] !== ',') return end;
    i = skipGap(text, j + 1);
  }
}
