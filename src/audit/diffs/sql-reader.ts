import { SqlTokens, type Token } from './sql-tokens';

/** A table a statement names: `schema` only when the name is qualified (`archive.contract`); both as PostgreSQL folds them. */
export interface TableName {
  schema: string | undefined;
  name: string;
}

/** One statement of an SQL string, by what it does to the transaction or to tables. */
export type SqlStatement =
  | { kind: 'begin' }
  /** COMMIT / END, ROLLBACK / ABORT; `chain`: `AND CHAIN` opens the next block at once. */
  | { kind: 'commit' | 'rollback'; chain: boolean }
  /** SAVEPOINT, ROLLBACK TO [SAVEPOINT], RELEASE [SAVEPOINT]: `name` as PostgreSQL names it. */
  | { kind: 'savepoint' | 'rollback-to' | 'release'; name: string }
  /** INSERT INTO, UPDATE, DELETE FROM, TRUNCATE, MERGE INTO (inside a `WITH` query or `COPY (…)` too), COPY … FROM: one table per write. */
  | { kind: 'write'; tables: readonly TableName[] }
  /** PREPARE name AS …: `tables` are those the prepared statement writes (none for a read). */
  | { kind: 'prepare'; name: string; tables: readonly TableName[] }
  /** EXECUTE name: runs what PREPARE named. */
  | { kind: 'execute'; name: string }
  /** DEALLOCATE [PREPARE] name, or DEALLOCATE ALL / DISCARD ALL (`name` undefined). */
  | { kind: 'deallocate'; name: string | undefined }
  | { kind: 'other' };

const OTHER: SqlStatement = { kind: 'other' };
const WRITES = new Set(['insert', 'update', 'delete', 'merge', 'truncate']);

/**
 * What the texts read last were read as. What a text is read as depends on the text alone (no
 * setting of the connection), and an app sends the same few texts again and again (TypeORM's
 * `START TRANSACTION`, `COMMIT`, and its INSERT, UPDATE and SELECT of each entity), so each is
 * read once. Bounded: a text longer than `MAX_KEPT_CHARS` is read each time, and the map is
 * emptied when it holds `MAX_KEPT_TEXTS` texts or `MAX_KEPT_TOTAL` characters, so an app that
 * never sends a text twice costs no memory past these bounds.
 */
const READ = new Map<string, readonly SqlStatement[]>();
const MAX_KEPT_TEXTS = 512;
const MAX_KEPT_CHARS = 8192;
const MAX_KEPT_TOTAL = 1 << 20;
let keptChars = 0;

/**
 * The statements of an SQL string, in order, each classified: split on `;` outside quotes,
 * dollar quotes and comments, read in one pass whatever the input (see `SqlTokens`). Empty
 * statements are left out, as PostgreSQL answers none for them. An answer kept (see `READ`) is
 * frozen: every read of its text gives the same one.
 *
 * @example
 * readSql("BEGIN; UPDATE /* tag *\/ archive.contract SET a = 'x;y'; ROLLBACK AND CHAIN");
 * // [{ kind: 'begin' }, { kind: 'write', tables: [{ schema: 'archive', name: 'contract' }] }, { kind: 'rollback', chain: true }]
 */
export function readSql(sql: string): readonly SqlStatement[] {
  // Not kept, so not shared: no caller sees another's answer.
  if (sql.length > MAX_KEPT_CHARS) return statementsOf(sql);
  const known = READ.get(sql);
  if (known) return known;
  const statements = frozen(statementsOf(sql));
  if (READ.size >= MAX_KEPT_TEXTS || keptChars + sql.length > MAX_KEPT_TOTAL) {
    READ.clear();
    keptChars = 0;
  }
  READ.set(sql, statements);
  keptChars += sql.length;
  return statements;
}

/** `statements` and every part of them made read-only. */
function frozen(statements: SqlStatement[]): readonly SqlStatement[] {
  for (const statement of statements) {
    if ('tables' in statement) {
      for (const table of statement.tables) Object.freeze(table);
      Object.freeze(statement.tables);
    }
    Object.freeze(statement);
  }
  return Object.freeze(statements);
}

function statementsOf(sql: string): SqlStatement[] {
  const tokens = new SqlTokens(sql);
  const statements: SqlStatement[] = [];
  // Without a `;` anywhere (quoted or not) the text is one statement: its first words tell what it is, the rest is not read.
  const single = !sql.includes(';');
  for (;;) {
    const first = tokens.next();
    if (first.kind === 'end') return statements;
    if (first.kind === 'semicolon') continue;
    statements.push(statementOf(first, tokens));
    if (single) return statements;
    skipStatement(tokens, first.kind === 'word' && first.text === 'create' && createsRoutine(tokens));
  }
}

/** What the statement starting with `first` is; reads as far as it needs (to its end for a `WITH` query). */
function statementOf(first: Token, tokens: SqlTokens): SqlStatement {
  if (first.kind !== 'word') return OTHER;
  switch (first.text) {
    case 'begin':
      return { kind: 'begin' };
    case 'start':
      return word(tokens, 'transaction') ? { kind: 'begin' } : OTHER;
    case 'commit':
    case 'end':
      return ending(tokens, 'commit');
    case 'rollback':
    case 'abort':
      return ending(tokens, 'rollback');
    case 'savepoint':
      return named(tokens, 'savepoint');
    case 'release':
      return afterSavepointWord(tokens, 'release');
    case 'with':
      return writesInWith(tokens);
    case 'prepare':
      return prepared(tokens);
    case 'execute': {
      const name = nameOf(tokens.next());
      return name === undefined ? OTHER : { kind: 'execute', name };
    }
    case 'deallocate': {
      word(tokens, 'prepare');
      if (word(tokens, 'all')) return { kind: 'deallocate', name: undefined };
      const name = nameOf(tokens.next());
      return name === undefined ? OTHER : { kind: 'deallocate', name };
    }
    case 'discard':
      return word(tokens, 'all') ? { kind: 'deallocate', name: undefined } : OTHER;
    case 'copy':
      return copied(tokens);
    default: {
      const tables = WRITES.has(first.text) ? writtenBy(first.text, tokens) : undefined;
      return tables ? { kind: 'write', tables } : OTHER;
    }
  }
}

/** After COMMIT / ROLLBACK: `[WORK | TRANSACTION] [AND [NO] CHAIN]`, or `TO [SAVEPOINT] name` after ROLLBACK. */
function ending(tokens: SqlTokens, kind: 'commit' | 'rollback'): SqlStatement {
  if (!word(tokens, 'work')) word(tokens, 'transaction');
  if (kind === 'rollback' && word(tokens, 'to')) return afterSavepointWord(tokens, 'rollback-to');
  if (word(tokens, 'and')) return { kind, chain: !word(tokens, 'no') && word(tokens, 'chain') };
  // COMMIT PREPARED / ROLLBACK PREPARED end no block of this connection.
  return word(tokens, 'prepared') ? OTHER : { kind, chain: false };
}

/** `[SAVEPOINT] name`: the word is the optional keyword only when a name follows it, else the savepoint's own name. */
function afterSavepointWord(tokens: SqlTokens, kind: 'rollback-to' | 'release'): SqlStatement {
  const token = tokens.peek();
  if (token.kind !== 'word' || token.text !== 'savepoint') return named(tokens, kind);
  tokens.next();
  const after = tokens.peek();
  return after.kind === 'word' || after.kind === 'quoted' ? named(tokens, kind) : { kind, name: 'savepoint' };
}

function named(tokens: SqlTokens, kind: 'savepoint' | 'rollback-to' | 'release'): SqlStatement {
  const name = nameOf(tokens.next());
  return name === undefined ? OTHER : { kind, name };
}

/**
 * The tables a write starting with `verb` names: `INSERT INTO t`, `UPDATE [ONLY] t`,
 * `DELETE FROM [ONLY] t`, `MERGE INTO [ONLY] t`, `TRUNCATE [TABLE] [ONLY] t [, …]`; undefined when
 * the words after the verb are not those of a write (`UPDATE` in `FOR UPDATE` is not one).
 */
function writtenBy(verb: string, tokens: SqlTokens): TableName[] | undefined {
  if ((verb === 'insert' || verb === 'merge') && !word(tokens, 'into')) return undefined;
  if (verb === 'delete' && !word(tokens, 'from')) return undefined;
  if (verb === 'truncate') word(tokens, 'table');
  const tables: TableName[] = [];
  do {
    word(tokens, 'only');
    const table = tableOf(tokens);
    if (!table) break;
    tables.push(table);
  } while (verb === 'truncate' && tokens.peek().kind === 'comma' && tokens.next());
  return tables.length > 0 ? tables : undefined;
}

/**
 * A `WITH` query: the writes it makes, in its data-modifying parts (`d AS (DELETE FROM t …)`) and
 * in its main statement (`… ) UPDATE t …`, also after a `SEARCH` or `CYCLE` clause). A write verb
 * counts right after a parenthesis opens, where a statement can start, and outside parentheses
 * only as the main statement's first word, after the `)` that closes the last part; never as a
 * column or a label (`AS delete`, `p.delete`), a lock (`FOR UPDATE`) nor an action (`DO UPDATE`,
 * `THEN DELETE`).
 */
function writesInWith(tokens: SqlTokens): SqlStatement {
  const tables: TableName[] = [];
  let previous: Token = { kind: 'word', text: 'with' };
  let depth = 0;
  // In the list of parts; 'next' after a `)` that closes one (a `,`, SEARCH, CYCLE or the main
  // statement comes); in a SEARCH or CYCLE clause up to its 'last' word (`SET name`, `USING name`);
  // 'main' once that statement began.
  let place: 'list' | 'next' | 'search' | 'cycle' | 'last' | 'main' = 'list';
  for (let token = tokens.peek(); token.kind !== 'end' && token.kind !== 'semicolon'; token = tokens.peek()) {
    tokens.next();
    let starts = previous.kind === 'open';
    if (depth === 0 && place !== 'list' && place !== 'main') {
      if (place === 'next') {
        // `,`: the next part; `AS`: that `)` closed the part's column list.
        if (token.kind === 'comma' || (token.kind === 'word' && token.text === 'as')) place = 'list';
        else if (token.kind === 'word' && (token.text === 'search' || token.text === 'cycle')) place = token.text;
        else {
          place = 'main';
          starts = true;
        }
      } else if (place === 'last') place = 'next';
      else if (token.kind === 'word' && token.text === (place === 'search' ? 'set' : 'using')) place = 'last';
    }
    const verb = token.kind === 'word' && WRITES.has(token.text) && starts;
    if (token.kind === 'open') depth += 1;
    else if (token.kind === 'close') {
      depth = Math.max(0, depth - 1);
      if (depth === 0 && place === 'list') place = 'next';
    }
    previous = token;
    if (verb) tables.push(...(writtenBy(token.text, tokens) ?? []));
  }
  return tables.length > 0 ? { kind: 'write', tables } : OTHER;
}

/** After PREPARE: `name [(type, …)] AS statement` (PREPARE TRANSACTION is not one). */
function prepared(tokens: SqlTokens): SqlStatement {
  if (tokens.peek().kind === 'word' && tokens.peek().text === 'transaction') return OTHER;
  const name = nameOf(tokens.next());
  if (name === undefined) return OTHER;
  if (tokens.peek().kind === 'open') {
    let depth = 0;
    for (let token = tokens.peek(); token.kind !== 'end' && token.kind !== 'semicolon'; token = tokens.peek()) {
      tokens.next();
      if (token.kind === 'open') depth += 1;
      else if (token.kind === 'close' && (depth -= 1) === 0) break;
    }
  }
  if (!word(tokens, 'as')) return OTHER;
  const first = tokens.next();
  // PREPARE cannot prepare a PREPARE: not read as one, so that no input nests the reader.
  const statement = first.kind === 'word' && first.text === 'prepare' ? OTHER : statementOf(first, tokens);
  return { kind: 'prepare', name, tables: statement.kind === 'write' ? statement.tables : [] };
}

/**
 * After COPY: `[BINARY] table [(column, …)] FROM …` writes the table (`TO` reads it); `(statement)
 * TO …` makes the writes of the statement in the parentheses (`COPY (DELETE FROM t RETURNING id)
 * TO STDOUT`). A COPY or PREPARE there is not read as one, so that no input nests the reader.
 */
function copied(tokens: SqlTokens): SqlStatement {
  if (tokens.peek().kind === 'open') {
    tokens.next();
    const first = tokens.next();
    const nested = first.kind === 'word' && (first.text === 'copy' || first.text === 'prepare');
    return nested ? OTHER : statementOf(first, tokens);
  }
  word(tokens, 'binary');
  const table = tableOf(tokens);
  if (!table) return OTHER;
  if (tokens.peek().kind === 'open') {
    tokens.next();
    // A column list: names and commas.
    while (nameOf(tokens.peek()) !== undefined || tokens.peek().kind === 'comma') tokens.next();
    if (tokens.peek().kind !== 'close') return OTHER;
    tokens.next();
  }
  return word(tokens, 'from') ? { kind: 'write', tables: [table] } : OTHER;
}

/** A table name, maybe qualified (`db.schema.table` keeps its last two parts); undefined when no name comes next. */
function tableOf(tokens: SqlTokens): TableName | undefined {
  let name = nameOf(tokens.peek());
  if (name === undefined) return undefined;
  tokens.next();
  let schema: string | undefined;
  while (tokens.peek().kind === 'dot') {
    tokens.next();
    const part = nameOf(tokens.peek());
    if (part === undefined) break;
    tokens.next();
    schema = name;
    name = part;
  }
  return { schema, name };
}

function nameOf(token: Token): string | undefined {
  return token.kind === 'word' || token.kind === 'quoted' ? token.text : undefined;
}

/** Takes the next token when it is the word `expected`. */
function word(tokens: SqlTokens, expected: string): boolean {
  const token = tokens.peek();
  if (token.kind !== 'word' || token.text !== expected) return false;
  tokens.next();
  return true;
}

/** After CREATE: whether `[OR REPLACE] FUNCTION` or `PROCEDURE` follows (a routine, whose body may be `BEGIN ATOMIC … END`). */
function createsRoutine(tokens: SqlTokens): boolean {
  if (word(tokens, 'or') && !word(tokens, 'replace')) return false;
  return word(tokens, 'function') || word(tokens, 'procedure');
}

/**
 * Past the rest of the statement, up to and with its `;`. A `;` inside parentheses ends no
 * statement (CREATE RULE's `DO (…; …)`; elsewhere PostgreSQL refuses the whole string), nor does
 * one inside a routine's SQL-standard body (`BEGIN ATOMIC …; END`), whose `END` is no COMMIT: the
 * body's `END` is the one right after a `;` of the body or after `ATOMIC` (a `CASE`'s `END`, or a
 * column or label named `end` after `AS` or a dot, never comes there).
 */
function skipStatement(tokens: SqlTokens, routine: boolean): void {
  let parentheses = 0;
  let body = false;
  let previous: Token | undefined;
  for (let token = tokens.next(); token.kind !== 'end'; previous = token, token = tokens.next()) {
    if (token.kind === 'semicolon' && parentheses === 0 && !body) return;
    if (token.kind === 'open') parentheses += 1;
    else if (token.kind === 'close') parentheses = Math.max(0, parentheses - 1);
    else if (token.kind !== 'word' || !routine) continue;
    else if (token.text === 'begin' && !body && parentheses === 0 && word(tokens, 'atomic')) {
      body = true;
      token = { kind: 'word', text: 'atomic' };
    } else if (
      token.text === 'end' &&
      body &&
      (previous?.kind === 'semicolon' || (previous?.kind === 'word' && previous.text === 'atomic'))
    )
      body = false;
  }
}
