/** A value a write sets in a column: a parameter's (its index in the parameters, from 0), the column's default, NULL, or an SQL expression. */
export type WrittenValue = { param: number } | 'default' | 'null' | 'expression';

/** What an INSERT or UPDATE in the form TypeORM writes them sets, as its text says. */
export interface TypeormWrite {
  kind: 'insert' | 'update';
  /** The table's path as TypeORM names it (`EntityMetadata.tablePath`): `table`, or `schema.table`. */
  table: string;
  /** An insert's columns, in order; the columns an update sets. */
  columns: string[];
  /** An insert's rows of VALUES, each as long as `columns`; an update's one row of values set. */
  rows: WrittenValue[][];
  /** An update's WHERE clause (empty when it has none) and the parameters it refers to, in order (indexes from 0). */
  where: string;
  whereParams: number[];
}

/**
 * Reads an INSERT or UPDATE as TypeORM writes them for PostgreSQL (`INSERT INTO "t"("a", "b")
 * VALUES ($1, DEFAULT), ($2, $3) RETURNING "id"`, `UPDATE "s"."t" SET "a" = $1 WHERE "id" IN ($2)`):
 * its table, and the value of each column of each row. Undefined for any other statement, for an
 * insert that may not insert its rows as written (`ON CONFLICT`, `SELECT`), and for text this
 * reader does not follow (comments, dollar-quoted or escape strings): what it returns is never a guess.
 *
 * @example
 * readTypeormWrite('UPDATE "contract" SET "clientId" = $1 WHERE "id" IN ($2)');
 * // { kind: 'update', table: 'contract', columns: ['clientId'], rows: [[{ param: 0 }]], where: '"id" IN ($2)', whereParams: [1] }
 */
export function readTypeormWrite(sql: string): TypeormWrite | undefined {
  if (sql.startsWith('INSERT INTO ')) return readInsert(new Reader(sql, 12));
  if (sql.startsWith('UPDATE ')) return readUpdate(new Reader(sql, 7));
  return undefined;
}

/**
 * `where` (of {@link TypeormWrite}) with its parameters numbered from `$1`, in order, and the
 * indexes of the write's parameters they stand for: the same rows, read with a query of its own.
 *
 * @example
 * renumbered('"id" IN ($2, $3)'); // { text: '"id" IN ($1, $2)', params: [1, 2] }
 */
export function renumbered(where: string): { text: string; params: number[] } | undefined {
  const params: number[] = [];
  let text = '';
  let from = 0;
  const end = new Reader(where, 0).expressionEnd(false, (at, param, length) => {
    text += `${where.slice(from, at)}$${params.push(param)}`;
    from = at + length;
  });
  return end === where.length ? { text: text + where.slice(from), params } : undefined;
}

function readInsert(reader: Reader): TypeormWrite | undefined {
  const table = reader.path();
  if (table === undefined) return undefined;
  if (reader.take(' AS ') && reader.name() === undefined) return undefined;
  const columns: string[] = [];
  const rows: WrittenValue[][] = [];
  if (reader.take(' DEFAULT VALUES')) rows.push([]);
  else {
    if (!reader.take('(')) return undefined;
    do {
      const name = reader.name();
      if (name === undefined) return undefined;
      columns.push(name);
    } while (reader.take(', '));
    if (!reader.take(') VALUES ')) return undefined;
    do {
      if (!reader.take('(')) return undefined;
      const row: WrittenValue[] = [];
      do {
        const value = reader.value(false);
        if (value === undefined) return undefined;
        row.push(value);
      } while (reader.take(', '));
      if (row.length !== columns.length || !reader.take(')')) return undefined;
      rows.push(row);
    } while (reader.take(', '));
  }
  // What follows may only ask for the rows back.
  return reader.atEnd() || reader.take(' RETURNING ') ? { kind: 'insert', table, columns, rows, where: '', whereParams: [] } : undefined;
}

function readUpdate(reader: Reader): TypeormWrite | undefined {
  const table = reader.path();
  if (table === undefined || !reader.take(' SET ')) return undefined;
  const columns: string[] = [];
  const row: WrittenValue[] = [];
  do {
    const name = reader.name();
    if (name === undefined || !reader.take(' = ')) return undefined;
    const value = reader.value(true);
    if (value === undefined) return undefined;
    columns.push(name);
    row.push(value);
  } while (reader.take(', '));
  const whereParams: number[] = [];
  let where = '';
  if (reader.take(' WHERE ')) {
    const from = reader.at;
    const end = reader.expressionEnd(true, (_, param) => whereParams.push(param));
    if (end === undefined) return undefined;
    where = reader.sql.slice(from, end);
    reader.at = end;
  }
  return reader.atEnd() || reader.take(' RETURNING ') ? { kind: 'update', table, columns, rows: [row], where, whereParams } : undefined;
}

/** Reads TypeORM's SQL text from `at`, part by part. */
class Reader {
  constructor(
    readonly sql: string,
    public at: number,
  ) {}

  atEnd(): boolean {
    return this.at === this.sql.length;
  }

  /** Takes `text` where the reader stands, if it is there. */
  take(text: string): boolean {
    if (!this.sql.startsWith(text, this.at)) return false;
    this.at += text.length;
    return true;
  }

  /** A double-quoted name, `""` read as `"`. */
  name(): string | undefined {
    if (this.sql[this.at] !== '"') return undefined;
    const end = quotedEnd(this.sql, this.at, '"');
    if (end === undefined) return undefined;
    const name = this.sql.slice(this.at + 1, end - 1).replaceAll('""', '"');
    this.at = end;
    return name;
  }

  /** Quoted names joined by dots: `"s"."t"` is `s.t`. */
  path(): string | undefined {
    const parts: string[] = [];
    do {
      const name = this.name();
      if (name === undefined) return undefined;
      parts.push(name);
    } while (this.take('.'));
    return parts.join('.');
  }

  /** The value at the reader, up to the next `,` or `)` outside parentheses (or ` WHERE `, `inSet`). */
  value(inSet: boolean): WrittenValue | undefined {
    const from = this.at;
    const end = this.expressionEnd(inSet);
    if (end === undefined || end === from) return undefined;
    this.at = end;
    const { sql } = this;
    if (sql.charCodeAt(from) === DOLLAR) {
      const digits = digitsAt(sql, from + 1);
      if (from + 1 + digits === end && sql.charCodeAt(from + 1) !== ZERO) return { param: Number(sql.slice(from + 1, end)) - 1 };
    }
    const text = sql.slice(from, end);
    if (text === 'DEFAULT') return 'default';
    return text === 'NULL' ? 'null' : 'expression';
  }

  /**
   * Where the expression at the reader ends: at a `,` or `)` outside parentheses, at
   * ` WHERE ` (`inSet`) or ` RETURNING ` outside them, or at the text's end; `param` is told of each
   * `$n` on the way (its index, its 0-based number, its length). Undefined for text this reader does not
   * follow: a comment, a dollar-quoted string, an escape string, an unclosed quote.
   */
  expressionEnd(inSet: boolean, param?: (at: number, index: number, length: number) => void): number | undefined {
    const { sql } = this;
    let depth = 0;
    for (let i = this.at; i < sql.length;) {
      const code = sql.charCodeAt(i);
      if (code === QUOTE || code === DOUBLE_QUOTE) {
        // E'…' reads backslash escapes: not followed here.
        if (code === QUOTE && (sql.charCodeAt(i - 1) | 0x20) === LOWER_E && !isNameChar(sql.charCodeAt(i - 2))) return undefined;
        const end = quotedEnd(sql, i, sql[i]);
        if (end === undefined) return undefined;
        i = end;
        continue;
      }
      if (code === DOLLAR) {
        const digits = digitsAt(sql, i + 1);
        // `$tag$…$tag$`, or a `$` inside a name: not followed here.
        if (digits === 0 || digits > 6 || isNameChar(sql.charCodeAt(i - 1))) return undefined;
        param?.(i, Number(sql.slice(i + 1, i + 1 + digits)) - 1, 1 + digits);
        i += 1 + digits;
        continue;
      }
      if ((code === DASH && sql.charCodeAt(i + 1) === DASH) || (code === SLASH && sql.charCodeAt(i + 1) === STAR)) return undefined;
      if (code === OPEN) depth += 1;
      else if (code === CLOSE || code === COMMA) {
        if (depth === 0) return i;
        if (code === CLOSE) depth -= 1;
      } else if (code === SPACE && depth === 0 && (sql.startsWith(' RETURNING ', i) || (inSet && sql.startsWith(' WHERE ', i)))) return i;
      i += 1;
    }
    return depth === 0 ? sql.length : undefined;
  }
}

const [QUOTE, DOUBLE_QUOTE, DOLLAR, DASH, SLASH, STAR, OPEN, CLOSE, COMMA, SPACE, ZERO, LOWER_E] = [...'\'"$-/*(), 0e'].map((char) =>
  char.charCodeAt(0),
);

/** How many decimal digits stand at `at`. */
function digitsAt(sql: string, at: number): number {
  let end = at;
  while (end < sql.length && sql.charCodeAt(end) >= ZERO && sql.charCodeAt(end) <= ZERO + 9) end += 1;
  return end - at;
}

/** A letter, digit, `_` or `$` (NaN, before the text's start, is none). */
function isNameChar(code: number): boolean {
  return (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || (code >= 48 && code <= 57) || code === 95 || code === 36;
}

/** The index after the quoted text at `at` (`quote` doubled inside it); undefined when it is not closed. */
function quotedEnd(sql: string, at: number, quote: string): number | undefined {
  for (let i = at + 1; i < sql.length; i++) {
    if (sql[i] !== quote) continue;
    if (sql[i + 1] !== quote) return i + 1;
    i += 1;
  }
  return undefined;
}
