/** The parts of a `pg` client read here: its status, and the protocol connection whose ReadyForQuery messages carry it. */
interface StatusClient {
  getTransactionStatus?: () => unknown;
  connection?: { on?: (event: string, listener: (message: { status?: unknown }) => void) => unknown };
}

/** With a `pg` too old to keep the status: the last one each followed connection's server sent. */
const followed = new WeakMap<object, { status: unknown }>();

/**
 * Follows the transaction status of a `pg` connection from now on, where `pg` does not keep it
 * itself (`getTransactionStatus()`, which newer `pg` has): the status each ReadyForQuery carries
 * is kept. Once per connection; later calls cost a look-up.
 *
 * @example
 * followStatus(client); // at checkout, before the module's query is sent
 */
export function followStatus(client: unknown): void {
  const c = client as StatusClient | null;
  if (!c || typeof c !== 'object' || typeof c.getTransactionStatus === 'function' || followed.has(c)) return;
  const on = c.connection?.on;
  if (typeof on !== 'function') return;
  const kept = { status: undefined as unknown };
  followed.set(c, kept);
  on.call(c.connection, 'readyForQuery', (message) => (kept.status = message?.status));
}

/**
 * Whether a `pg` connection was inside a transaction block (open, `T`, or failed, `E`) at its
 * server's last answer: true, false (idle, `I`), or undefined when that is not known (a `pg`
 * without `getTransactionStatus()` whose connection has not been followed through an answer, see
 * {@link followStatus}; a test double). Synchronous, no query.
 *
 * @example
 * if (insideBlock(client)) client.release(new Error('left inside a transaction block'));
 */
export function insideBlock(client: unknown): boolean | undefined {
  const c = client as StatusClient | null;
  if (!c || typeof c !== 'object') return undefined;
  let status: unknown;
  try {
    status = typeof c.getTransactionStatus === 'function' ? c.getTransactionStatus() : followed.get(c)?.status;
  } catch {
    return undefined;
  }
  if (status === 'I') return false;
  return status === 'T' || status === 'E' ? true : undefined;
}
