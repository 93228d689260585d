import { Client, DatabaseError } from 'pg';
import { AuditDbTimeoutError } from './audit.errors';
import { commandIdleLimitMs, limitIdleTransaction } from './idle-in-transaction';

/**
 * `pg_stat_activity.state` of a backend that may be running a statement: running ones, `disabled`
 * (`track_activities = off`) and null (not shown to this role), where the server cannot tell.
 */
const LIVE_STATES: readonly (string | null)[] = ['active', 'fastpath function call', 'disabled', null];

/** `ReadyForQuery` statuses of a connection inside a transaction block (open, or failed). */
const IN_TRANSACTION: readonly (string | undefined)[] = ['T', 'E'];

type Call = (...args: unknown[]) => unknown;

/**
 * A `pg` client for a command line tool (`audit-verify`, `audit-retention`, `audit-archive`,
 * `audit-replay`), with client-side deadlines of `timeoutMs` (`--timeout-ms`; see
 * docs/FAILURES.md, "The commands' deadlines"). A server that accepts and never answers has no
 * `statement_timeout` of its own to apply, and `pg` waits for it for ever:
 * - connecting (TCP, TLS, authentication) may last `timeoutMs`, then the socket is destroyed;
 * - while a query is under way and nothing has come back for `timeoutMs`, a second connection
 *   asks the server whether this one's statement is still running (`pg_stat_activity`): when it
 *   says so, or cannot tell (`track_activities = off`), or answers at all but with an error (the
 *   question's connection refused at a `CONNECTION LIMIT`), the wait goes on (a long scan, a lock
 *   wait: work, which the server's own `statement_timeout` bounds); when it says the statement is
 *   not running, or answers nothing within `timeoutMs`, the connection is given up (its socket
 *   destroyed) and every query under way on it fails with {@link AuditDbTimeoutError} (`step` `query`);
 * - `end()` waits `timeoutMs` at most for the server's goodbye;
 * - a transaction begun with a string that starts with `BEGIN` sets
 *   `idle_in_transaction_session_timeout` to 3 × `timeoutMs` plus a second, at least 10 s: when the command is
 *   cut off (a partition the server never hears of), its transaction ends on the server, with the
 *   locks it holds, that long after its last statement, not when TCP keepalive gives up (hours);
 * - a connection inside a transaction with no query in flight for a third of that limit (waiting
 *   on the command's other connections, or its disk) is sent `SELECT 1`, one at a time, until
 *   `end()`, so that the limit ends only a transaction whose command is cut off.
 * A dead peer is thus noticed within about 3 × `timeoutMs`; a live statement is never cut.
 *
 * @example
 * const client = await connectCommandClient('postgres://audit@db/audit', 30_000);
 * try { await client.query('SELECT 1'); } finally { await client.end(); }
 */
export async function connectCommandClient(url: string, timeoutMs: number): Promise<Client> {
  const client = await connectWithin(url, timeoutMs);
  watchSilence(client, url, timeoutMs);
  return client;
}

/**
 * Whether `error` is a command's database past `--timeout-ms` (the command exits 3).
 *
 * @example
 * const status = (error: unknown) => (isCommandTimeout(error) ? TIMEOUT_EXIT_STATUS : 2);
 */
export function isCommandTimeout(error: unknown): error is AuditDbTimeoutError {
  return error instanceof AuditDbTimeoutError && (error.step === 'connect' || error.step === 'query');
}

async function connectWithin(url: string, timeoutMs: number): Promise<Client> {
  const client = new Client({ connectionString: url });
  // A socket error fails the query under way; unhandled, it would also end the process with a stack trace.
  client.on('error', () => undefined);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      client.connection.stream.destroy();
      reject(AuditDbTimeoutError.command('connect', timeoutMs));
    }, timeoutMs);
  });
  try {
    await Promise.race([client.connect(), expired]);
  } finally {
    clearTimeout(timer);
  }
  return client;
}

/** Bounds `client`'s queries and `end()` as {@link connectCommandClient} says (its methods replaced on the instance). */
function watchSilence(client: Client, url: string, timeoutMs: number): void {
  const pending = new Set<(error: Error) => void>();
  let heard = Date.now();
  let failure: Error | null = null;
  let probing = false;
  let pinging = false;
  let ending = false;
  let status: string | undefined;
  let ready = Date.now();
  const pingAfterMs = commandIdleLimitMs(timeoutMs) / 3;
  client.connection.stream.on('data', () => (heard = Date.now()));
  client.connection.on('readyForQuery', (message: { status?: string }) => {
    status = message.status;
    ready = Date.now();
  });
  const giveUp = (error: Error) => {
    failure = error;
    client.connection.stream.destroy();
    for (const fail of [...pending]) fail(error);
  };
  const keepAwake = () => {
    if (failure || ending || pinging || pending.size > 0 || !IN_TRANSACTION.includes(status)) return;
    if (Date.now() - ready < pingAfterMs) return;
    pinging = true;
    void (client.query('SELECT 1') as Promise<unknown>).catch(() => undefined).finally(() => (pinging = false));
  };
  const check = async () => {
    keepAwake();
    if (failure || probing || pending.size === 0 || Date.now() - heard < timeoutMs) return;
    probing = true;
    const asked = Date.now();
    const running = await stillRunning(url, (client as Client & { processID?: number }).processID, timeoutMs);
    probing = false;
    // Said to be running: work, bounded by the server; the wait goes on for another timeoutMs.
    if (running) heard = Date.now();
    // Answered meanwhile: what was late was this process (a long computation), not the server.
    else if (heard < asked && pending.size > 0 && !failure) giveUp(AuditDbTimeoutError.command('query', timeoutMs));
  };
  const timer = setInterval(() => void check(), Math.max(50, Math.floor(timeoutMs / 4))).unref();
  client.connection.stream.once('close', () => clearInterval(timer));

  const query = client.query.bind(client) as Call;
  const end = client.end.bind(client) as () => Promise<void>;
  Object.assign(client, {
    query: (...args: unknown[]) => {
      if (failure) return Promise.reject(failure);
      if (pending.size === 0) heard = Date.now();
      if (typeof args[0] === 'string') args[0] = limitIdleTransaction(args[0], commandIdleLimitMs(timeoutMs));
      const sent = query(...args);
      if (typeof (sent as Promise<unknown> | undefined)?.then !== 'function') return sent;
      return new Promise((resolve, reject) => {
        const fail = (error: Error) => {
          pending.delete(fail);
          reject(error);
        };
        pending.add(fail);
        (sent as Promise<unknown>).then(
          (result) => pending.delete(fail) && resolve(result),
          (error: unknown) => pending.delete(fail) && reject(error as Error),
        );
      });
    },
    end: async () => {
      ending = true;
      // A server that answers nothing never closes the connection: its goodbye is waited for timeoutMs at most.
      if (!failure)
        await within(
          end().catch(() => undefined),
          timeoutMs,
        );
      clearInterval(timer);
      client.connection.stream.destroy();
    },
  });
}

/**
 * Whether backend `pid` may be running a statement: the server says so, cannot tell, or answers the
 * question with an error of its own (a server that answers at all is alive; its
 * `statement_timeout` bounds the work); false when it says the statement is not running, or
 * answers nothing in time (no connection, no answer, a socket error).
 */
async function stillRunning(url: string, pid: number | undefined, timeoutMs: number): Promise<boolean> {
  let probe: Client | undefined;
  try {
    probe = await connectWithin(url, timeoutMs);
    const asked = probe.query<{ state: string | null }>('SELECT state FROM pg_catalog.pg_stat_activity WHERE pid = $1', [pid]);
    const answer = await within(asked, timeoutMs);
    return answer !== undefined && answer.rows.length === 1 && LIVE_STATES.includes(answer.rows[0].state);
  } catch (error) {
    return error instanceof DatabaseError;
  } finally {
    if (probe) {
      const done = probe;
      await within(
        done.end().catch(() => undefined),
        timeoutMs,
      );
      done.connection.stream.destroy();
    }
  }
}

/** `work`'s value, or undefined when it takes longer than `ms`. */
async function within<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
