import { AsyncResource } from 'node:async_hooks';
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

/**
 * The server's transaction status as `pg` last saw it on the runner's connection (TypeORM keeps
 * that client in a protected field). Not read in `pg`'s pipeline mode: there the queries sent after
 * the one followed may have been answered already, and the status is theirs.
 */
function driverStatus(queryRunner: QueryRunner): unknown {
  try {
    const client = driverClient(queryRunner);
    if (client?.pipeline === true) return undefined;
    return typeof client?.getTransactionStatus === 'function' ? client.getTransactionStatus() : undefined;
  } catch {
    return undefined;
  }
}

/** The parts of a `pg` client read here: its status, and the protocol connection whose messages it handles. */
interface DriverClient {
  getTransactionStatus?: () => unknown;
  /** `pg`'s pipeline mode: queries are sent before the ones ahead of them are answered. */
  pipeline?: unknown;
  connection?: { on?: (event: string, listener: () => void) => unknown };
}

function driverClient(queryRunner: QueryRunner): DriverClient | undefined {
  return (queryRunner as unknown as { databaseConnection?: DriverClient }).databaseConnection;
}

/** Per `pg` connection followed: whether an error was read whose ReadyForQuery has not been yet, and what waits for that one. */
interface Answers {
  awaitingReady: boolean;
  waiting: ((statusRead: boolean) => void)[];
}

const answersByClient = new WeakMap<object, Answers>();

/**
 * Follows the answers on the runner's `pg` connection from now on, so that a failed query can be
 * settled with the transaction status that comes after its error ({@link onceAnswered}). Call it
 * before the query is sent; once per connection is enough (later calls cost a look-up).
 *
 * @example
 * followAnswers(queryRunner); // from the subscriber's beforeQuery(), before the query is sent
 */
export function followAnswers(queryRunner: QueryRunner): void {
  const client = driverClient(queryRunner);
  const connection = client?.connection;
  if (!client || typeof connection?.on !== 'function' || answersByClient.has(client)) return;
  const answers: Answers = { awaitingReady: false, waiting: [] };
  answersByClient.set(client, answers);
  const settle = (statusRead: boolean) => {
    answers.awaitingReady = false;
    // Every query's ReadyForQuery comes here: most find no one waiting.
    if (answers.waiting.length > 0) for (const waiter of answers.waiting.splice(0)) waiter(statusRead);
  };
  // Listeners added after `pg`'s own: at an error, the query is failed already; at ReadyForQuery, the status is read.
  connection.on('errorMessage', () => {
    answers.awaitingReady = true;
  });
  connection.on('readyForQuery', () => settle(true));
  connection.on('end', () => settle(false));
}

/**
 * Runs `settle` for a query that just failed on the runner's connection once `pg` holds the
 * transaction status the server sent after the error: PostgreSQL sends the error on its own, then
 * ReadyForQuery with the status, and `pg` fails the query at the error, so the status it keeps
 * may still be the one from before the query (a block it ended, a COMMIT it ran, not yet seen).
 * At once when the status has come already, or when the connection is not followed
 * ({@link followAnswers}); returns undefined then. Otherwise `settle` runs as soon as the status
 * is read, before the connection serves anything else, and the promise returned resolves after it;
 * if the status has not come within `timeoutMs` (a silent network), or the connection ends,
 * `settle` runs with `statusRead` false. Never rejects.
 *
 * @example
 * const waited = onceAnswered(queryRunner, 2000, (statusRead) => console.log(statusRead ? 'status read' : 'status not known'));
 * await waited; // TypeORM waits for it before the caller sees the failure
 */
export function onceAnswered(
  queryRunner: QueryRunner,
  timeoutMs: number,
  settle: (statusRead: boolean) => void,
): Promise<void> | undefined {
  const client = driverClient(queryRunner);
  const answers = client ? answersByClient.get(client) : undefined;
  if (!answers?.awaitingReady) {
    settle(true);
    return undefined;
  }
  // Run where the failed query's caller runs (its request's audit context), not in pg's message handling.
  const inCallersContext = AsyncResource.bind(settle);
  return new Promise<void>((resolve) => {
    const waiter = (statusRead: boolean) => {
      clearTimeout(timer);
      try {
        inCallersContext(statusRead);
      } catch {
        // `settle` reports its own faults; it runs inside pg's message handling, which must go on.
      }
      resolve();
    };
    const timer = setTimeout(() => {
      answers.waiting.splice(answers.waiting.indexOf(waiter), 1);
      waiter(false);
    }, timeoutMs);
    answers.waiting.push(waiter);
  });
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

/**
 * Whether `error` is the server's answer to a query (an ErrorResponse, which `pg` gives as an error
 * with a severity and an SQLSTATE), as against one `pg` made itself (`query_timeout`, a connection
 * ended): after those the server may still be running the query, and the status `pg` keeps is
 * from before it.
 *
 * @example
 * answeredByServer(new Error('Query read timeout')); // false
 */
export function answeredByServer(error: unknown): boolean {
  const fields = error as { severity?: unknown; code?: unknown } | undefined;
  return typeof fields?.severity === 'string' && typeof fields.code === 'string';
}
