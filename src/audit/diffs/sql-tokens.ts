/** What a token of SQL text is: a word (keyword or plain name), a quoted name, or one of the marks a statement's reader needs. */
export type TokenKind = 'word' | 'quoted' | 'dot' | 'comma' | 'open' | 'close' | 'semicolon' | 'other' | 'end';

/**
 * A token: `text` is a word with its ASCII capitals folded to lower case, or a quoted name as
 * PostgreSQL names it (both cut to 63 bytes, see `nameCut()`); empty for the rest.
 */
export interface Token {
  kind: TokenKind;
  text: string;
}

const END: Token = { kind: 'end', text: '' };
const MARKS: Record<string, TokenKind> = { '.': 'dot', ',': 'comma', '(': 'open', ')': 'close', ';': 'semicolon' };

/** A letter, digit, `_`, `$` or any non-ASCII character: what an unquoted name is made of. */
function isNameChar(code: number): boolean {
  return (
    (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || (code >= 48 && code <= 57) || code === 95 || code === 36 || code >= 128
  );
}

/** `text` with its ASCII capitals lowered: PostgreSQL folds no other letter of an unquoted name in a UTF-8 database (`Étape` is not `étape`). */
function foldAscii(text: string): string {
  return text.replace(/[A-Z]+/g, (capitals) => capitals.toLowerCase());
}

/** The longest name PostgreSQL keeps, in bytes (NAMEDATALEN - 1). */
const NAME_BYTES = 63;

/**
 * `name` as PostgreSQL keeps it: cut to its first 63 bytes of UTF-8, at the end of a whole
 * character (a character that would cross byte 63 is left out with the rest), as it cuts every
 * identifier, unquoted or quoted, in a UTF-8 database.
 *
 * @example
 * nameCut(`${'x'.repeat(62)}é`); // 'x' × 62: é takes bytes 63 and 64
 */
export function nameCut(name: string): string {
  // Each UTF-16 unit is at most 3 bytes of UTF-8 (a surrogate pair, 2 units, is 4).
  if (name.length * 3 <= NAME_BYTES) return name;
  let bytes = 0;
  for (let i = 0; i < name.length;) {
    const point = name.codePointAt(i) as number;
    const size = point < 0x80 ? 1 : point < 0x800 ? 2 : point < 0x10000 ? 3 : 4;
    if (bytes + size > NAME_BYTES) return name.slice(0, i);
    bytes += size;
    i += point < 0x10000 ? 1 : 2;
  }
  return name;
}

/** The index after the line a `--` comment ends with: PostgreSQL ends it at a line feed or a carriage return. */
function lineEnd(sql: string, from: number): number {
  let i = from;
  while (i < sql.length && sql[i] !== '\n' && sql[i] !== '\r') i += 1;
  return i < sql.length ? i + 1 : sql.length;
}

/** A character a name can start with (a digit or `$` cannot). */
function startsName(code: number): boolean {
  return isNameChar(code) && code !== 36 && !(code >= 48 && code <= 57);
}

/**
 * Reads SQL text token by token, in one pass: white space, `-- …` (to a line feed or carriage
 * return) and (nested) block comments are skipped; a `U&"…"` name is read with its escapes; a string (`'…'`, `E'…'` with its backslash escapes, `$tag$…$tag$`) is one token, with the parts
 * PostgreSQL joins to it (a quote on a later line continues a string, see `stringEnd()`);
 * every character is looked at a bounded number of times, whatever the input.
 *
 * @example
 * const tokens = new SqlTokens("UPDATE /* x *\/ \"Contract\" SET a = 'b;c'");
 * tokens.next(); // { kind: 'word', text: 'update' }
 * tokens.next(); // { kind: 'quoted', text: 'Contract' }
 */
export class SqlTokens {
  private at = 0;
  private ahead: Token | undefined;

  constructor(private readonly sql: string) {}

  /** The next token, without taking it. */
  peek(): Token {
    return (this.ahead ??= this.read());
  }

  /** Takes the next token. */
  next(): Token {
    const token = this.peek();
    this.ahead = undefined;
    return token;
  }

  private read(): Token {
    this.skipBlanks();
    const { sql } = this;
    if (this.at >= sql.length) return END;
    const start = this.at;
    const code = sql.charCodeAt(start);
    const char = sql[start];
    if (char === '"') return { kind: 'quoted', text: nameCut(this.quoted()) };
    if (char === "'") {
      this.at = this.stringEnd(start + 1, false);
      return { kind: 'other', text: '' };
    }
    if (char === '$') {
      this.at = this.dollarEnd(start);
      return { kind: 'other', text: '' };
    }
    if ((char === 'U' || char === 'u') && sql[start + 1] === '&' && sql[start + 2] === '"') {
      this.at = start + 2;
      return { kind: 'quoted', text: nameCut(this.unicodeName(this.quoted())) };
    }
    if (startsName(code)) {
      let end = start + 1;
      let ascii = code < 128;
      for (let next = sql.charCodeAt(end); end < sql.length && isNameChar(next); next = sql.charCodeAt((end += 1))) ascii &&= next < 128;
      this.at = end;
      // E'…' (or e'…') reads backslash escapes.
      if (end === start + 1 && (char === 'E' || char === 'e') && sql[end] === "'") {
        this.at = this.stringEnd(end + 1, true);
        return { kind: 'other', text: '' };
      }
      // A name of ASCII alone (the common case) is lowered at once.
      const text = ascii ? sql.slice(start, end).toLowerCase() : foldAscii(sql.slice(start, end));
      return { kind: 'word', text: nameCut(text) };
    }
    if (isNameChar(code)) {
      // A number (or a parameter after its `$`): one token.
      let end = start + 1;
      while (end < sql.length && isNameChar(sql.charCodeAt(end))) end += 1;
      this.at = end;
      return { kind: 'other', text: '' };
    }
    this.at = start + 1;
    return { kind: MARKS[char] ?? 'other', text: '' };
  }

  /** Past white space and comments. */
  private skipBlanks(): void {
    const { sql } = this;
    while (this.at < sql.length) {
      const code = sql.charCodeAt(this.at);
      if (code === 32 || (code >= 9 && code <= 13)) this.at += 1;
      else if (code === 45 && sql.charCodeAt(this.at + 1) === 45) this.at = lineEnd(sql, this.at + 2);
      else if (code === 47 && sql.charCodeAt(this.at + 1) === 42) this.at = this.commentEnd(this.at);
      else return;
    }
  }

  /** The index after the block comment at `at` (PostgreSQL nests them); the text's end if unclosed. */
  private commentEnd(at: number): number {
    const { sql } = this;
    let depth = 0;
    let i = at;
    while (i < sql.length) {
      if (sql[i] === '/' && sql[i + 1] === '*') {
        depth += 1;
        i += 2;
      } else if (sql[i] === '*' && sql[i + 1] === '/') {
        depth -= 1;
        i += 2;
        if (depth === 0) return i;
      } else i += 1;
    }
    return sql.length;
  }

  /**
   * The index after the string whose text starts at `from` (`''` is a quote; with `escapes`, `\x`
   * is one character), and after its continuations: PostgreSQL joins a string and a quote that
   * follows it past white space holding a line break, and reads the part after that quote as it
   * read the first (an `E` string's escapes included).
   */
  private stringEnd(from: number, escapes: boolean): number {
    const { sql } = this;
    let i = from;
    while (i < sql.length) {
      if (sql[i] === "'") {
        if (sql[i + 1] === "'") i += 2;
        else {
          const next = this.continuation(i + 1);
          if (next < 0) return i + 1;
          i = next + 1;
        }
      } else i += escapes && sql[i] === '\\' ? 2 : 1;
    }
    return sql.length;
  }

  /**
   * The index of the quote that continues a string closed just before `from`, or -1: spaces, tabs,
   * form feeds, vertical tabs, line breaks and `--` comments, one line break at least, then a quote
   * (a block comment between them ends the string).
   */
  private continuation(from: number): number {
    const { sql } = this;
    let lineBreak = false;
    let i = from;
    while (i < sql.length) {
      const code = sql.charCodeAt(i);
      if (code === 10 || code === 13) {
        lineBreak = true;
        i += 1;
      } else if (code === 32 || code === 9 || code === 11 || code === 12) i += 1;
      else if (code === 45 && sql.charCodeAt(i + 1) === 45) {
        // Past the line break that ends the comment (at the text's end, no quote follows anyway).
        i = lineEnd(sql, i + 2);
        lineBreak = true;
      } else return lineBreak && code === 39 ? i : -1;
    }
    return -1;
  }

  /** A quoted name, without its quotes and with `""` read as `"`; the index moves past it. */
  private quoted(): string {
    const { sql } = this;
    let i = this.at + 1;
    let text = '';
    let from = i;
    while (i < sql.length) {
      if (sql[i] !== '"') {
        i += 1;
        continue;
      }
      text += sql.slice(from, i);
      if (sql[i + 1] !== '"') {
        this.at = i + 1;
        return text;
      }
      text += '"';
      i += 2;
      from = i;
    }
    this.at = sql.length;
    return text + sql.slice(from);
  }

  /**
   * A `U&"…"` name's text with its escapes read (`\XXXX`, `\+XXXXXX`, a doubled escape character),
   * and past the `UESCAPE 'c'` that follows it, if any, which sets that character.
   */
  private unicodeName(raw: string): string {
    const { sql } = this;
    let escape = '\\';
    const after = this.at;
    this.skipBlanks();
    const word = foldAscii(sql.slice(this.at, this.at + 7));
    if (word === 'uescape' && !isNameChar(sql.charCodeAt(this.at + 7))) {
      this.at += 7;
      this.skipBlanks();
      if (sql[this.at] === "'" && sql[this.at + 2] === "'") {
        escape = sql[this.at + 1];
        this.at += 3;
      } else this.at = after;
    } else this.at = after;
    let text = '';
    let i = 0;
    while (i < raw.length) {
      if (raw[i] !== escape) {
        text += raw[i];
        i += 1;
      } else if (raw[i + 1] === escape) {
        text += escape;
        i += 2;
      } else {
        const long = raw[i + 1] === '+';
        const digits = raw.slice(long ? i + 2 : i + 1, long ? i + 8 : i + 5);
        const point = /^[0-9a-fA-F]+$/.test(digits) && digits.length === (long ? 6 : 4) ? Number.parseInt(digits, 16) : NaN;
        text += point <= 0x10ffff ? String.fromCodePoint(point) : raw[i];
        i += Number.isNaN(point) || point > 0x10ffff ? 1 : digits.length + (long ? 2 : 1);
      }
    }
    return text;
  }

  /** The index after a dollar-quoted string at `at` (`$$…$$`, `$tag$…$tag$`), or after the lone `$` when none starts there. */
  private dollarEnd(at: number): number {
    const { sql } = this;
    let end = at + 1;
    if (end < sql.length && startsName(sql.charCodeAt(end))) {
      while (end < sql.length && isNameChar(sql.charCodeAt(end)) && sql[end] !== '$') end += 1;
    }
    if (sql[end] !== '$') return at + 1;
    const tag = sql.slice(at, end + 1);
    const close = sql.indexOf(tag, end + 1);
    return close < 0 ? sql.length : close + tag.length;
  }
}
