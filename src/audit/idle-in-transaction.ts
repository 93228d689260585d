/**
 * How much longer than a round trip's client-side deadline the server lets a transaction of the
 * module sit idle: room for the client's own work between two statements (hashing, signing).
 */
export const IDLE_MARGIN_MS = 1000;

/** The least idle limit of a command's transaction, whatever `--timeout-ms`: room for a command's own work between statements (a batch of rows checked, a file written) when `--timeout-ms` is small. */
export const COMMAND_IDLE_FLOOR_MS = 10_000;

/** A leading `BEGIN` or `START TRANSACTION` statement (with its modes), up to its `;` or the end. */
const LEADING_BEGIN = /^\s*(?:BEGIN|START\s+TRANSACTION)\b[^;]*/i;

/**
 * The server-side limit on an idle transaction for work whose round trips each have a client-side
 * deadline of `roundTripMs`: that plus {@link IDLE_MARGIN_MS}. A client that gives up (or a network
 * partition that cuts it off) never ends its transaction on the server, whose TCP keepalive notices
 * the dead peer only after hours (Linux defaults); this limit ends it, and its locks, soon after.
 *
 * @example
 * idleLimitMs(32_000); // 33_000
 */
export function idleLimitMs(roundTripMs: number): number {
  return roundTripMs + IDLE_MARGIN_MS;
}

/**
 * The idle limit of a command's transaction (`audit-retention`, `audit-archive`, `audit-verify`):
 * {@link idleLimitMs} of 3 × `timeoutMs` (the longest the command waits on a silent server), at
 * least {@link COMMAND_IDLE_FLOOR_MS}.
 *
 * @example
 * commandIdleLimitMs(30_000); // 91_000
 */
export function commandIdleLimitMs(timeoutMs: number): number {
  return Math.max(COMMAND_IDLE_FLOOR_MS, idleLimitMs(3 * timeoutMs));
}

/**
 * `sql` with `SET LOCAL idle_in_transaction_session_timeout` of `ms` right after its leading
 * `BEGIN` (in the same round trip, so that the limit holds from the transaction's first moment);
 * any other `sql` unchanged. The statements after the `BEGIN` keep their order, and the last one's
 * result stays the string's result.
 *
 * @example
 * limitIdleTransaction(`BEGIN; SET LOCAL statement_timeout = '5s'`, 6000);
 * // "BEGIN; SET LOCAL idle_in_transaction_session_timeout = '6000ms'; SET LOCAL statement_timeout = '5s'"
 */
export function limitIdleTransaction(sql: string, ms: number): string {
  const begin = LEADING_BEGIN.exec(sql);
  if (!begin) return sql;
  const setting = `SET LOCAL idle_in_transaction_session_timeout = '${Math.ceil(ms)}ms'`;
  return `${begin[0]}; ${setting}${sql.slice(begin[0].length)}`;
}
