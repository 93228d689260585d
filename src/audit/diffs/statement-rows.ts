import { type QueryRunner } from 'typeorm';
import { type EntityChangeOp } from './entity-change';

/** The command tag of the last statement each runner's connection answered, with its row count, when it wrote. */
const lastWrite = new WeakMap<QueryRunner, { command: string; rows: number }>();

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
 * clears it. Called for every query the runner sends, before TypeORM sends the entity event of a
 * write by criteria or through a query builder.
 *
 * @example
 * statementAnswered(queryRunner, rawResults); // from the subscriber's afterQuery()
 */
export function statementAnswered(queryRunner: QueryRunner, result: unknown): void {
  const last: unknown = Array.isArray(result) ? result[result.length - 1] : result;
  const { command, rowCount } = (last ?? {}) as { command?: unknown; rowCount?: unknown };
  if ((command === 'INSERT' || command === 'UPDATE' || command === 'DELETE') && typeof rowCount === 'number') {
    lastWrite.set(queryRunner, { command, rows: rowCount });
  } else if (lastWrite.has(queryRunner)) {
    lastWrite.delete(queryRunner);
  }
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
