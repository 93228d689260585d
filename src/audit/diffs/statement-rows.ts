import { type EntityMetadata, type ObjectLiteral, type QueryRunner } from 'typeorm';
import { type EntityChangeOp } from './entity-change';
import { readSql } from './sql-reader';
import { nameCut } from './sql-tokens';

/** The command tag of the last statement each runner's connection answered, with its row count, when it wrote. */
const lastWrite = new WeakMap<QueryRunner, { command: string; rows: number }>();

/** An UPDATE or DELETE answered on a runner; `parameters` kept only for one that wrote no row. */
interface Answered {
  rows: number;
  parameters: readonly unknown[] | undefined;
}

/**
 * The UPDATE and DELETE statements each runner sent since its last answer that was neither those
 * nor an INSERT, by command and table (`UPDATE contract`), in order. TypeORM's `save()` and
 * `remove()` load the rows first, then send their writes in such a run, one UPDATE per entity
 * and one DELETE per table, right before their events, in the same order.
 */
interface Run {
  byKey: Map<string, Answered[]>;
  size: number;
  /** More statements than are kept: nothing is known of this run. */
  overflow: boolean;
}

const runs = new WeakMap<QueryRunner, Run>();
/** Statements kept per run; a `save()` of more entities at once lists them all, as before. */
const RUN_LIMIT = 100_000;

/** The command PostgreSQL answers to a statement that makes each kind of change. */
const COMMAND_OF: Record<EntityChangeOp, string> = {
  insert: 'INSERT',
  update: 'UPDATE',
  remove: 'DELETE',
  'soft-remove': 'UPDATE',
  recover: 'UPDATE',
};

/**
 * Notes how many rows the last statement of a query wrote on `queryRunner`, from `pg`'s answer
 * (`command` and `rowCount`, as TypeORM's `UpdateResult.affected` reads them); any other answer
 * clears it. An UPDATE or DELETE alone in its query is kept in the runner's run of writes, with
 * the table `query` names (and its `parameters` when it wrote no row); an answer that is no write
 * ends the run. Called for every query the runner sends, before TypeORM sends the entity events
 * of the writes.
 *
 * @example
 * statementAnswered(queryRunner, rawResults, query, parameters); // from the subscriber's afterQuery()
 */
export function statementAnswered(queryRunner: QueryRunner, result: unknown, query = '', parameters?: unknown): void {
  const last: unknown = Array.isArray(result) ? result[result.length - 1] : result;
  const { command, rowCount } = (last ?? {}) as { command?: unknown; rowCount?: unknown };
  const wrote = (command === 'INSERT' || command === 'UPDATE' || command === 'DELETE') && typeof rowCount === 'number';
  if (wrote) lastWrite.set(queryRunner, { command, rows: rowCount });
  else if (lastWrite.has(queryRunner)) lastWrite.delete(queryRunner);
  if (!wrote) {
    runs.delete(queryRunner);
    return;
  }
  if (command === 'INSERT') return;
  const run = runOf(queryRunner);
  if (run.overflow) return;
  const statements = Array.isArray(result) ? [] : readSql(query);
  const [statement] = statements;
  if (statements.length !== 1 || statement.kind !== 'write' || statement.tables.length !== 1 || run.size >= RUN_LIMIT) {
    // A run holding a write that is not known to be one table's: which answer is whose is not known any more.
    run.overflow = true;
    run.byKey.clear();
    return;
  }
  const key = `${command} ${statement.tables[0].name}`;
  const answered: Answered = {
    rows: rowCount,
    parameters: rowCount === 0 && Array.isArray(parameters) ? (parameters as unknown[]) : undefined,
  };
  const same = run.byKey.get(key);
  if (same) same.push(answered);
  else run.byKey.set(key, [answered]);
  run.size += 1;
}

/**
 * True when the statement just answered on `queryRunner` is the one an `op` by criteria (or
 * through a query builder) was made by, and PostgreSQL says it wrote no row: an `update()` or
 * `delete()` whose criteria matched nothing, an insert that ignored its conflict. False whenever
 * that is not known, so a change is never dropped on a guess.
 *
 * @example
 * wroteNoRow(queryRunner, 'update'); // true after `UPDATE … WHERE counterparty = 'Nobody'` answered `UPDATE 0`
 */
export function wroteNoRow(queryRunner: QueryRunner, op: EntityChangeOp): boolean {
  const last = lastWrite.get(queryRunner);
  return last !== undefined && last.rows === 0 && last.command === COMMAND_OF[op];
}

/**
 * For the event of an update, soft remove, recover or remove of a row TypeORM loaded (`save()`,
 * `remove()`, `softRemove()`, `recover()`): true when the statement TypeORM sent for it was
 * answered with a count of 0 rows, so the row was left as it was (a `BEFORE` trigger that
 * returned NULL, a row-level security policy that hid it). Each update-like event takes the next
 * UPDATE of its table in the runner's run; a remove, the DELETE of its table, which holds every
 * entity of the table removed at once (true only when no DELETE of the table in the run wrote a
 * row). The statement must name the row's id among its parameters; false whenever any of this is
 * not known (a tree entity, whose writes are more than one per row), so a change is never
 * dropped on a guess. Called for every such event, audited or not, to keep the order.
 *
 * @example
 * loadedRowUnwritten(queryRunner, 'update', metadata, loadedRow); // true after TypeORM's `UPDATE … WHERE "id" IN ($2)` answered `UPDATE 0`
 */
export function loadedRowUnwritten(queryRunner: QueryRunner, op: EntityChangeOp, metadata: EntityMetadata, row: ObjectLiteral): boolean {
  if (op === 'insert' || metadata.treeType) return false;
  const run = runs.get(queryRunner);
  const answers = run?.byKey.get(`${COMMAND_OF[op]} ${nameCut(metadata.tableName)}`);
  if (!run || run.overflow || !answers || answers.length === 0) return false;
  const ids = metadata.primaryColumns.map((column) => column.getEntityValue(row) as unknown);
  if (op === 'remove') return answers.every((answer) => answer.rows === 0) && answers.some((answer) => namesRow(answer, ids));
  const answer = answers.shift() as Answered;
  run.size -= 1;
  return answer.rows === 0 && namesRow(answer, ids);
}

/** Whether each of the row's id values is among the parameters of a statement that wrote no row. */
function namesRow(answer: Answered, ids: unknown[]): boolean {
  const parameters = answer.parameters;
  if (!parameters || ids.length === 0) return false;
  return ids.every((id) => {
    if (id === null || id === undefined || typeof id === 'object' || typeof id === 'function') return false;
    const text = String(id as string | number | bigint | boolean | symbol);
    return parameters.some((parameter) => (typeof parameter === 'object' ? false : String(parameter as string) === text));
  });
}

function runOf(queryRunner: QueryRunner): Run {
  let run = runs.get(queryRunner);
  if (!run) {
    run = { byKey: new Map(), size: 0, overflow: false };
    runs.set(queryRunner, run);
  }
  return run;
}
