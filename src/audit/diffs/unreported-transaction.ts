import { type DataSource, type QueryRunner } from 'typeorm';
import { dataSourcePool, queryWithin } from '../db-session';

/** Where a record() row was written: its key (id, occurred_at) and table. */
export interface RecordedAt {
  id: string;
  /** ISO 8601: with the id, it finds the row in its month's partition alone. */
  occurredAt: string;
  /** The audit table, quoted. */
  table: string;
}

/**
 * Whether the connection of `queryRunner`, which has just inserted a row, is inside a transaction
 * block TypeORM does not report (opened with `BEGIN` or `START TRANSACTION` in plain SQL, or
 * through the driver). `pg` keeps the status the server sent with its last answer
 * (`getTransactionStatus()`), so this costs nothing; with a `pg` too old to keep it, PostgreSQL is
 * asked in one query on the same connection: the insert gave an open block a transaction id,
 * where an insert on its own has committed with its id. Undefined when that question fails (a
 * block that has failed, a lost connection). Never rejects.
 *
 * @example
 * if ((await insideUnreportedBlock(queryRunner)) === false) markRecorded(context); // the row committed with its insert
 */
export async function insideUnreportedBlock(queryRunner: QueryRunner): Promise<boolean | undefined> {
  const open = unreportedBlockOpen(queryRunner);
  if (open !== undefined) return open;
  try {
    const rows = (await queryRunner.query('SELECT txid_current_if_assigned() IS NOT NULL AS open')) as { open?: unknown }[];
    const open = rows[0]?.open;
    return typeof open === 'boolean' ? open : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the connection of `queryRunner` was in a transaction block (or a failed one) at its last
 * answer, as `pg` keeps it; undefined when this `pg` keeps no status. Synchronous, no query.
 *
 * @example
 * if (depth === 0 && unreportedBlockOpen(queryRunner)) holdUntilTheBlockEnds(change);
 */
export function unreportedBlockOpen(queryRunner: QueryRunner): boolean | undefined {
  const status = driverStatus(queryRunner);
  if (status === 'I') return false;
  // In a block ('T'), or in one that has failed ('E').
  return status === 'T' || status === 'E' ? true : undefined;
}

/** The server's transaction status as `pg` last saw it on the runner's connection (TypeORM keeps that client in a protected field). */
function driverStatus(queryRunner: QueryRunner): unknown {
  try {
    const client = (queryRunner as unknown as { databaseConnection?: { getTransactionStatus?: () => unknown } }).databaseConnection;
    return typeof client?.getTransactionStatus === 'function' ? client.getTransactionStatus() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the row `at` names has committed: looked up by its key on a connection of `dataSource`'s
 * pool checked out for it alone, which is in no transaction of its own that has written (a
 * connection handed back to the pool inside the writer's still open block sees its uncommitted
 * row, and so answers false). The look-up, its wait for the connection included, has `timeoutMs`:
 * past that the answer is false and the connection is destroyed and leaves the pool (see
 * {@link queryWithin}), so that a silent network partition keeps none. False also when the
 * look-up fails or the DataSource has no PostgreSQL pool; never rejects.
 *
 * @example
 * const committed = await committedElsewhere(queryRunner.dataSource, at, 5000); // when the request's row is decided
 */
export async function committedElsewhere(dataSource: DataSource, at: RecordedAt, timeoutMs: number): Promise<boolean> {
  const pool = dataSourcePool(dataSource);
  if (!pool) return false;
  try {
    const rows = await queryWithin(
      pool,
      `SELECT 1 FROM ${at.table} WHERE id = $1::uuid AND occurred_at = $2::timestamptz AND txid_current_if_assigned() IS NULL`,
      [at.id, at.occurredAt],
      timeoutMs,
      (step, ms) => new Error(`record() row look-up: no ${step === 'connect' ? 'connection' : 'answer'} within ${ms} ms`),
    );
    return Array.isArray(rows) && rows.length === 1;
  } catch {
    return false;
  }
}
