/** `INSERT INTO t`, `UPDATE [ONLY] t`, `DELETE FROM [ONLY] t`, `TRUNCATE [TABLE] [ONLY] t`, `MERGE INTO [ONLY] t`, t maybe schema-qualified and quoted. */
const WRITE =
  /^(?:insert\s+into|update(?:\s+only)?|delete\s+from(?:\s+only)?|truncate(?:\s+table)?(?:\s+only)?|merge\s+into(?:\s+only)?)\s+((?:"(?:[^"]|"")+"|[\w$]+)(?:\s*\.\s*(?:"(?:[^"]|"")+"|[\w$]+))*)/i;

/** A dollar-quote opening tag: `$$` or `$tag$`. */
const DOLLAR_TAG = /^\$(?:[A-Za-z_][\w]*)?\$/;

/**
 * The statements of an SQL string, each without the comments and whitespace before it: split on
 * `;` outside quotes (`'…'`, `"…"`, `$tag$…$tag$`) and comments (`-- …` to the line's end, and nested block comments).
 *
 * @example
 * sqlStatements("-- rename\nSET LOCAL lock_timeout = '1s'; UPDATE contract SET title = 'a;b'");
 * // ["SET LOCAL lock_timeout = '1s'", "UPDATE contract SET title = 'a;b'"]
 */
export function sqlStatements(sql: string): string[] {
  const statements: string[] = [];
  let start = -1;
  let at = 0;
  const end = (stop: number) => {
    if (start >= 0) statements.push(sql.slice(start, stop).trim());
    start = -1;
  };
  while (at < sql.length) {
    const char = sql[at];
    if (char === '-' && sql[at + 1] === '-') {
      const newline = sql.indexOf('\n', at);
      at = newline < 0 ? sql.length : newline + 1;
    } else if (char === '/' && sql[at + 1] === '*') {
      at = commentEnd(sql, at);
    } else if (char === ';') {
      end(at);
      at += 1;
    } else if (/\s/.test(char)) {
      at += 1;
    } else {
      if (start < 0) start = at;
      at = tokenEnd(sql, at);
    }
  }
  end(sql.length);
  return statements.filter((statement) => statement.length > 0);
}

/**
 * The tables the write statements (insert, update, delete, truncate, merge) of an SQL string
 * name, unquoted, one per statement, in order: leading comments are skipped and each statement
 * of a multi-statement string is read. Empty for a string without such a statement.
 *
 * @example
 * writtenTables('-- app=api\nUPDATE "public"."contract" SET "title" = $1'); // ['contract']
 * writtenTables("SET LOCAL lock_timeout = '1s'; MERGE INTO contract USING …"); // ['contract']
 */
export function writtenTables(sql: string): string[] {
  const tables: string[] = [];
  for (const statement of sqlStatements(sql)) {
    const path = WRITE.exec(statement)?.[1];
    const table = path && lastName(path);
    if (table) tables.push(table);
  }
  return tables;
}

/** The last name of a dotted path (`"public"."contract"` → `contract`), unquoted; read part by part, in one pass. */
function lastName(path: string): string | undefined {
  let last: string | undefined;
  for (const part of path.matchAll(/"((?:[^"]|"")+)"|([\w$]+)/g))
    last = part[1] !== undefined ? part[1].replace(/""/g, '"') : part[2].toLowerCase();
  return last;
}

/** The index after a block comment starting at `at` (PostgreSQL nests them); the string's end if unclosed. */
function commentEnd(sql: string, at: number): number {
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

/** The index after the token at `at`: a whole quoted string or identifier, or one character. */
function tokenEnd(sql: string, at: number): number {
  const char = sql[at];
  if (char === "'" || char === '"') {
    let i = at + 1;
    while (i < sql.length) {
      if (sql[i] === char) {
        if (sql[i + 1] === char) i += 2;
        else return i + 1;
      } else if (char === "'" && sql[i] === '\\' && /^[eE]$/.test(sql[at - 1] ?? '')) i += 2;
      else i += 1;
    }
    return sql.length;
  }
  if (char === '$') {
    const tag = DOLLAR_TAG.exec(sql.slice(at, at + 64))?.[0];
    // `$1` is a parameter; a tag must not follow an identifier character (`a$b$`).
    if (tag && !/[\w$]/.test(sql[at - 1] ?? '')) {
      const close = sql.indexOf(tag, at + tag.length);
      return close < 0 ? sql.length : close + tag.length;
    }
  }
  return at + 1;
}
