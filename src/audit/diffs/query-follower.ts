import { type QueryRunner } from 'typeorm';
import { readSql, type SqlStatement, type TableName } from './sql-reader';
import {
  commitRolledBack,
  failedSavepoints,
  followSavepoint,
  heldBlockEnded,
  heldBlockOpen,
  transactionEndedBySql,
} from './transaction-changes';
import {
  auditedWrites,
  rawWritesEnded,
  rawWritesHeld,
  unheardEndedBySql,
  unheardMark,
  unheardRolledBack,
  unheardRolledBackTo,
  unknownRelations,
  writesSeen,
} from './unheard-writes';
import { unreportedBlockOpen } from './unreported-transaction';

type Answer = 'COMMIT' | 'ROLLBACK' | undefined;

/** The statements PREPAREd on each connection (a session's, whatever runner holds it): the tables each writes (none for a read). */
const preparedWrites = new WeakMap<object, Map<string, readonly TableName[]>>();

/** Runners whose connection was in a block TypeORM does not report at their last answer, outside a transaction TypeORM reports. */
const openBlocks = new WeakSet<QueryRunner>();

/**
 * Follows a query PostgreSQL answered, statement by statement, in order (`readSql()`): what each
 * does to the transaction (BEGIN, COMMIT / ROLLBACK [AND CHAIN], SAVEPOINT, ROLLBACK TO, RELEASE)
 * is applied to the changes held for it (`transaction-changes.ts`) and to the writes no entity
 * event answered (`unheard-writes.ts`), and each write on an audited entity's table is noted at
 * its place. In a transaction TypeORM reports, only savepoints sent as SQL and writes are
 * followed (TypeORM's own COMMIT answered with ROLLBACK drops what it held). Outside one, a block
 * opened as SQL is followed through its statements, a string of several statements outside a
 * block runs as one block (a ROLLBACK in it drops the writes before it), and `pg`'s status after
 * the query says whether a block ended in a way no statement showed (through the driver).
 * Returns the relations its writes name that are not known yet (a view, a partition:
 * `unknownRelations()`) having applied nothing; the caller looks them up (`lookUpRelations()`)
 * and calls again with `lookedUp`.
 *
 * @example
 * queryAnswered(queryRunner, 'COMMIT; BEGIN', rawResults); // from the subscriber's afterQuery()
 */
export function queryAnswered(queryRunner: QueryRunner, query: string, result: unknown, lookedUp = false): TableName[] {
  const read = readSql(query);
  const unknown = lookedUp ? [] : unknownRelations(queryRunner, read);
  // Relations not known yet (a view?): nothing applied; followed again once they are looked up.
  if (unknown.length > 0) return unknown;
  const statements = withPrepared(queryRunner, read);
  if (queryRunner.isTransactionActive) inTransaction(queryRunner, query, statements, result);
  else follow(queryRunner, statements, result, unreportedBlockOpen(queryRunner));
  return unknown;
}

/** Applies `statements`, answered with `result`, on a runner in no transaction TypeORM reports; `status`: `pg`'s after the query. */
function follow(queryRunner: QueryRunner, statements: readonly SqlStatement[], result: unknown, status: boolean | undefined): void {
  const held = openBlocks.has(queryRunner) || heldBlockOpen(queryRunner) || rawWritesHeld(queryRunner);
  const control = statements.some((statement) => statement.kind !== 'write' && statement.kind !== 'other');
  // A query that neither writes nor controls a transaction, with no block to follow: nothing to do.
  if (!held && !control && !statements.some((statement) => statement.kind === 'write')) return;
  let open = held;
  if (!control && status !== undefined && open !== status) {
    // Ended (or opened) through the driver, before this query.
    if (open) blockEnded(queryRunner, undefined);
    open = status;
  }
  // A string of several statements outside a block runs as one: its writes are held here until it ends.
  let implicit: string[][] | undefined = !open && statements.length > 1 ? [] : undefined;
  const last = statements.length - 1;
  statements.forEach((statement, index) => {
    if (statement.kind === 'write') {
      const tables = auditedWrites(queryRunner, statement.tables);
      if (implicit) implicit.push(tables);
      else writesSeen(queryRunner, tables, open);
    } else if (statement.kind === 'begin') {
      // BEGIN makes the implicit block a block of its own, with what was written in it.
      for (const tables of implicit ?? []) writesSeen(queryRunner, tables, true);
      implicit = undefined;
      open = true;
    } else if (statement.kind === 'commit' || statement.kind === 'rollback') {
      if (implicit && statement.kind === 'commit') for (const tables of implicit) writesSeen(queryRunner, tables, false);
      if (!implicit && open)
        blockEnded(queryRunner, statement.kind === 'rollback' ? 'ROLLBACK' : answerTo(result, index, statements.length));
      open = open && !implicit && statement.chain;
      implicit = !open && index < last ? [] : undefined;
    } else if (open && (statement.kind === 'savepoint' || statement.kind === 'rollback-to' || statement.kind === 'release')) {
      savepoint(queryRunner, statement);
    }
  });
  for (const tables of implicit ?? []) writesSeen(queryRunner, tables, false);
  // Still open as read, yet pg says no block is: it ended in a way the reader does not know (PREPARE TRANSACTION).
  if (control && open && status === false) blockEnded(queryRunner, undefined);
  if (status ?? open) openBlocks.add(queryRunner);
  else openBlocks.delete(queryRunner);
}

/**
 * Notes that `query` failed. PostgreSQL ran its statements up to the one that failed, and kept
 * what a COMMIT or ROLLBACK among them ended: the statements up to the string's last COMMIT or
 * ROLLBACK before its last statement are applied (their answers not known, so a commit counts its changes rather than
 * listing them), unless `pg` says a block is still open and none could have begun after that
 * end (then it never ran). Savepoint commands in a string that ended nothing, in a block, are
 * followed as far as can be known (see `failedSavepoints()`). Outside a transaction TypeORM reports, a block that `pg` says is no
 * longer open (a failed COMMIT rolls back) ended now, unseen: what it held is counted. Settled at
 * once, before the connection can serve anyone else, with the status the server sent after the
 * error (see `onceAnswered()`); `statusRead` false: that status never came, and is taken as not known.
 *
 * @example
 * queryFailed(queryRunner, 'BEGIN; UPDATE contract SET a = 1; COMMIT; SELECT 1/0'); // the UPDATE counts
 */
export function queryFailed(queryRunner: QueryRunner, query: string, statusRead = true): void {
  const status = statusRead ? unreportedBlockOpen(queryRunner) : undefined;
  const statements = withPrepared(queryRunner, readSql(query), true);
  const kept = keptOf(statements, status);
  if (kept.length === 0 && (status === true || (status === undefined && queryRunner.isTransactionActive))) {
    // The last statement is the one that failed or comes after it: it took no effect.
    const sent = statements
      .slice(0, -1)
      .filter(
        (statement): statement is Extract<SqlStatement, { kind: 'savepoint' | 'rollback-to' | 'release' }> =>
          statement.kind === 'savepoint' || statement.kind === 'rollback-to' || statement.kind === 'release',
      );
    if (sent.length > 0) failedSavepoints(queryRunner, sent, unheardMark());
  }
  if (queryRunner.isTransactionActive) return inTransaction(queryRunner, query, kept, undefined);
  if (kept.length > 0) follow(queryRunner, kept, undefined, status);
  if (status !== false) return;
  openBlocks.delete(queryRunner);
  if (heldBlockOpen(queryRunner) || rawWritesHeld(queryRunner)) blockEnded(queryRunner, undefined);
}

/**
 * Whether following the failed `query` depends on the transaction status after it: it holds a
 * transaction command (BEGIN, COMMIT, ROLLBACK, a savepoint command), or, outside a transaction
 * TypeORM reports, a block the follower holds writes or changes for may have ended with it. Any
 * other failed query is followed without it (the caller need not wait for it).
 *
 * @example
 * statusNeeded(queryRunner, 'INSERT INTO note VALUES (1)'); // false, outside any block
 */
export function statusNeeded(queryRunner: QueryRunner, query: string): boolean {
  if (readSql(query).some((statement) => CONTROL.has(statement.kind))) return true;
  return !queryRunner.isTransactionActive && (openBlocks.has(queryRunner) || heldBlockOpen(queryRunner) || rawWritesHeld(queryRunner));
}

const CONTROL = new Set<SqlStatement['kind']>(['begin', 'commit', 'rollback', 'savepoint', 'rollback-to', 'release']);

/**
 * The statements of a failed string that ran and were kept: up to its last COMMIT or ROLLBACK, if
 * that one ran (one that ends the string may be the one that failed: taken as not run, as before).
 */
function keptOf(statements: readonly SqlStatement[], status: boolean | undefined): readonly SqlStatement[] {
  let last = statements.length - 2;
  while (last >= 0 && statements[last].kind !== 'commit' && statements[last].kind !== 'rollback') last -= 1;
  if (last < 0) return [];
  const end = statements[last] as { chain: boolean };
  // A block is open after the failure, yet nothing after that end opens one: the failure came before it.
  if (status === true && !end.chain && !statements.slice(last + 1).some((statement) => statement.kind === 'begin')) return [];
  return statements.slice(0, last + 1);
}

/**
 * TypeORM's transaction ended: with it, any block opened as SQL under it (there is one per connection).
 *
 * @example
 * transactionEnded(queryRunner); // from afterTransactionCommit() and afterTransactionRollback()
 */
export function transactionEnded(queryRunner: QueryRunner): void {
  if (!queryRunner.isTransactionActive) openBlocks.delete(queryRunner);
}

function inTransaction(queryRunner: QueryRunner, query: string, statements: readonly SqlStatement[], result: unknown): void {
  if (query === 'COMMIT' && answerTo(result, 0, 1) === 'ROLLBACK') {
    commitRolledBack(queryRunner);
    return unheardRolledBack(queryRunner, 0);
  }
  statements.forEach((statement, index) => {
    if (statement.kind === 'write') writesSeen(queryRunner, auditedWrites(queryRunner, statement.tables), false);
    else if (statement.kind === 'savepoint' || statement.kind === 'rollback-to' || statement.kind === 'release')
      savepoint(queryRunner, statement);
    else if (statement.kind === 'commit' || statement.kind === 'rollback') {
      // Sent as SQL (or TypeORM's own, at depth 1, which ends the same): every level held ends here.
      const answer = statement.kind === 'rollback' ? 'ROLLBACK' : answerTo(result, index, statements.length);
      transactionEndedBySql(queryRunner, answer);
      unheardEndedBySql(queryRunner, answer !== 'ROLLBACK');
    }
  });
}

/**
 * `statements` with each EXECUTE of a statement PREPAREd on the same connection as the write it
 * runs (PREPARE and DEALLOCATE are noted, in order; they are not transactional). Of a string that
 * `failed`, which statements ran is not known: a DEALLOCATE (or DISCARD ALL) is not applied (had
 * it run, an EXECUTE of the name would fail, and a failed query counts no write), nor a PREPARE of
 * a name already prepared (PostgreSQL refuses it); a PREPARE of a new name is (had it not run, an
 * EXECUTE of the name would fail).
 */
function withPrepared(queryRunner: QueryRunner, statements: readonly SqlStatement[], failed = false): readonly SqlStatement[] {
  let resolved: SqlStatement[] | undefined;
  statements.forEach((statement, index) => {
    if (statement.kind !== 'prepare' && statement.kind !== 'execute' && statement.kind !== 'deallocate') return;
    resolved ??= statements.slice();
    const session = ((queryRunner as { databaseConnection?: unknown }).databaseConnection ?? queryRunner) as object;
    let named = preparedWrites.get(session);
    if (statement.kind === 'prepare' && !(failed && named?.has(statement.name))) {
      preparedWrites.set(session, (named ??= new Map()).set(statement.name, statement.tables));
    } else if (statement.kind === 'deallocate' && !failed) {
      if (statement.name === undefined) preparedWrites.delete(session);
      else named?.delete(statement.name);
    }
    const tables = statement.kind === 'execute' ? named?.get(statement.name) : undefined;
    resolved[index] = tables && tables.length > 0 ? { kind: 'write', tables } : { kind: 'other' };
  });
  return resolved ?? statements;
}

function savepoint(queryRunner: QueryRunner, statement: { kind: 'savepoint' | 'rollback-to' | 'release'; name: string }): void {
  const mark = followSavepoint(queryRunner, statement, unheardMark());
  if (mark !== undefined) unheardRolledBackTo(queryRunner, mark);
}

/** The block TypeORM does not report ended, as PostgreSQL `answer`ed its end (undefined: not seen, or not known). */
function blockEnded(queryRunner: QueryRunner, answer: Answer): void {
  heldBlockEnded(queryRunner, answer);
  rawWritesEnded(queryRunner, answer !== 'ROLLBACK');
}

/** PostgreSQL's answer to statement `index` of `count` (a COMMIT in a failed block is answered with ROLLBACK); undefined when not known. */
function answerTo(result: unknown, index: number, count: number): Answer {
  const answers: unknown[] = Array.isArray(result) ? result : [result];
  // Without one answer per statement, only the last is known to be the last statement's.
  const answer = answers.length === count ? answers[index] : index === count - 1 ? answers[answers.length - 1] : undefined;
  const command = (answer as { command?: unknown } | undefined)?.command;
  return command === 'COMMIT' || command === 'ROLLBACK' ? command : undefined;
}
