import { type EntityMetadata, type QueryRunner } from 'typeorm';
import { type ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import { nameCut, SqlTokens, type Token } from './sql-tokens';

/** What the last INSERT each runner's connection answered overwrites on a conflict, read once when first asked. */
interface SentInsert {
  sql: string;
  read?: { table: string; columns: ReadonlySet<string> } | null;
}

const lastInsert = new WeakMap<QueryRunner, SentInsert>();

/**
 * Notes the statement `queryRunner` was just answered for when TypeORM made it an INSERT (any
 * other statement clears the note): its insert events follow it, before the next statement.
 * Costs a prefix check per statement; the text is read only when an insert event asks.
 *
 * @example
 * insertAnswered(queryRunner, query); // from the subscriber's afterQuery()
 */
export function insertAnswered(queryRunner: QueryRunner, query: string): void {
  if (query.startsWith('INSERT ')) lastInsert.set(queryRunner, { sql: query });
  else if (lastInsert.has(queryRunner)) lastInsert.delete(queryRunner);
}

/**
 * Which of `metadata`'s columns the INSERT just answered on `queryRunner` may change when it meets
 * its conflict (`ON CONFLICT … DO UPDATE SET`, as `upsert()` and `orUpdate()` write it), those of
 * the conflict target left out: none for an insert without it, or into another table.
 *
 * @example
 * upsertOverwrites(queryRunner, customerMetadata)(codeColumn); // true after upsert({ id, code }, ['id'])
 */
export function upsertOverwrites(queryRunner: QueryRunner, metadata: EntityMetadata): (column: ColumnMetadata) => boolean {
  const sent = lastInsert.get(queryRunner);
  if (!sent) return () => false;
  if (sent.read === undefined) sent.read = overwrites(sent.sql);
  const read = sent.read;
  if (!read || read.table !== nameCut(metadata.tableName)) return () => false;
  return (column) => read.columns.has(nameCut(column.databaseName));
}

function isWord(token: Token, word: string): boolean {
  return token.kind === 'word' && token.text === word;
}

function isName(token: Token): boolean {
  return token.kind === 'word' || token.kind === 'quoted';
}

/**
 * The table an `INSERT INTO` names (its last part) and the columns its `DO UPDATE SET` assigns
 * but its conflict target (`ON CONFLICT (…)`) does not name, or null for another statement: the
 * `ON CONFLICT` is looked for outside parentheses, and each assignment's value is passed over to
 * the comma that ends it.
 */
function overwrites(sql: string): { table: string; columns: ReadonlySet<string> } | null {
  const tokens = new SqlTokens(sql);
  if (!isWord(tokens.next(), 'insert') || !isWord(tokens.next(), 'into')) return null;
  let name = tokens.next();
  if (!isName(name)) return null;
  while (tokens.peek().kind === 'dot') {
    tokens.next();
    name = tokens.next();
    if (!isName(name)) return null;
  }
  const table = name.text;
  if (!skipTo(tokens, 'conflict')) return null;
  // The conflict target's columns are set to the values they hold.
  const target = new Set<string>();
  if (tokens.peek().kind === 'open') {
    tokens.next();
    for (let inner = tokens.next(); inner.kind !== 'close' && inner.kind !== 'end'; inner = tokens.next())
      if (isName(inner)) target.add(inner.text);
  }
  if (!skipTo(tokens, 'do') || !isWord(tokens.next(), 'update') || !isWord(tokens.next(), 'set')) return null;
  const columns = new Set<string>();
  for (;;) {
    const target = tokens.next();
    if (isName(target)) columns.add(target.text);
    else if (target.kind === 'open') {
      // (a, b) = (…): each name of the list.
      for (let inner = tokens.next(); inner.kind !== 'close' && inner.kind !== 'end'; inner = tokens.next())
        if (isName(inner)) columns.add(inner.text);
    } else break;
    if (!passValue(tokens)) break;
  }
  for (const column of target) columns.delete(column);
  return { table, columns };
}

/** Takes tokens up to and with `word` outside parentheses; false at the statement's end. */
function skipTo(tokens: SqlTokens, word: string): boolean {
  let depth = 0;
  for (let token = tokens.next(); token.kind !== 'end'; token = tokens.next()) {
    if (token.kind === 'open') depth += 1;
    else if (token.kind === 'close') depth -= 1;
    else if (depth === 0 && token.kind === 'semicolon') return false;
    else if (depth === 0 && isWord(token, word)) return true;
  }
  return false;
}

/** Takes an assignment's value and the comma after it: true when another assignment follows. */
function passValue(tokens: SqlTokens): boolean {
  let depth = 0;
  for (let token = tokens.next(); token.kind !== 'end'; token = tokens.next()) {
    if (token.kind === 'open') depth += 1;
    else if (token.kind === 'close') depth -= 1;
    else if (depth > 0) continue;
    else if (token.kind === 'comma') return true;
    else if (token.kind === 'semicolon' || isWord(token, 'where') || isWord(token, 'returning')) return false;
  }
  return false;
}
