import { idleLimitMs, limitIdleTransaction } from './idle-in-transaction';
import { stallTolerantDeadline } from './stall-tolerant-deadline';
import { blockFreeCheckout, type CheckoutPool } from './pool-checkout';

/** The parts of a `pg` client a {@link DbSession} uses. */
export interface DbClient {
  query(text: string, values?: unknown[]): Promise<unknown>;
  release(error?: Error): void;
  once(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
  connection?: { stream?: { destroy(): void } };
}

/** The parts of a `pg` pool a {@link DbSession} uses (pg-pool's own fields too, to find a connection it opens for us: see {@link CheckoutPool}). */
export type DbPool = CheckoutPool<DbClient>;

/** The client-side deadlines of a {@link DbSession}, and the error each step that misses one fails with. */
export interface DbSessionDeadlines {
  /** Longest wait for a connection; one the pool opens for the session is destroyed past it. */
  connectMs: number;
  /** Longest wait for one round trip; past it the connection is destroyed. */
  roundTripMs: number;
  /** The error of a step past its deadline. */
  timeout: (step: 'connect' | 'query', ms: number) => Error;
  /** Told whenever a round trip settles. */
  onProgress?: () => void;
  /** The server's limit on this session's idle transaction (`idle_in_transaction_session_timeout`); default `roundTripMs` plus a second. */
  idleInTransactionMs?: number;
}

/**
 * One pool connection with client-side deadlines (the module's sealer, retention, partition
 * upkeep and erasure use it; the writer has its own, see `bounded-pool-query.ts`): a server that
 * accepts and never answers (a silent network partition, a hung server) never applies its own
 * `statement_timeout`, and `pg` has no deadline of its own. Taking the connection may last
 * `connectMs`, each round trip `roundTripMs`, both measured as the operation's time, not the
 * process's: an answer that came while the process itself was stalled is taken (see
 * `stallTolerantDeadline`). A round trip past its deadline, or
 * {@link DbSession.abandon}, destroys the connection's socket and takes it out of the pool, so
 * that nobody waits on it and the pool never hands it out again. The server never hears of that
 * in a partition: every transaction begun on the session (a string that starts with `BEGIN`)
 * therefore sets `idle_in_transaction_session_timeout` (`idleInTransactionMs`) in its first round
 * trip, so that a transaction whose client is gone ends on the server, with its locks, soon after
 * instead of when the server's TCP keepalive gives up (hours). It offers what the module uses
 * of a TypeORM `QueryRunner`.
 *
 * @example
 * const session = await DbSession.checkout(pool, { connectMs: 5000, roundTripMs: 32_000, timeout: (step, ms) => new Error(`${step}: ${ms} ms`) });
 * try { await session.query('SELECT 1'); } finally { session.release(); }
 */
export class DbSession {
  isTransactionActive = false;
  private done = false;
  private failure: Error | null = null;
  /** Rejecters of the queries under way: a connection given up fails them at once, whatever its socket does. */
  private readonly pending = new Set<(error: Error) => void>();
  private readonly onError = (error: Error) => this.discard(error);

  private constructor(
    private readonly client: DbClient,
    private readonly deadlines: DbSessionDeadlines,
  ) {
    // A socket error while checked out is ours to handle: unhandled, it would crash the process.
    client.once('error', this.onError);
  }

  /**
   * Checks a connection out of `pool` within `deadlines.connectMs`. Past it, a request still in the
   * pool's queue leaves it, and a connection the pool is opening for it is destroyed: a checkout
   * given up leaves no connection behind. A connection the pool holds inside a transaction block
   * the app left open is not taken (see {@link blockFreeCheckout}): the session's statements never
   * run, nor commit, inside it.
   */
  static checkout(pool: DbPool, deadlines: DbSessionDeadlines): Promise<DbSession> {
    const { connectMs } = deadlines;
    const checkout = blockFreeCheckout(pool);
    return new Promise((resolve, reject) => {
      let expired = false;
      const cancel = stallTolerantDeadline(connectMs, () => {
        expired = true;
        checkout.withdraw();
        const opening = checkout.opening();
        if (opening) destroy(opening);
        reject(deadlines.timeout('connect', connectMs));
      });
      checkout.client.then(
        (client) => {
          cancel();
          // Ready after the deadline: back to the pool, for a later caller.
          if (expired) client.release();
          else resolve(new DbSession(client, deadlines));
        },
        (error: unknown) => {
          cancel();
          reject(error as Error);
        },
      );
    });
  }

  /** Whether the connection was given up (a round trip past its deadline, a socket error, {@link DbSession.abandon}). */
  get failed(): boolean {
    return this.failure !== null;
  }

  /** Rows of the statement (of the last one, for several in one string); rejects past `roundTripMs`. A leading `BEGIN` gets the idle limit. */
  query(sql: string, parameters?: unknown[]): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const { roundTripMs, timeout, onProgress, idleInTransactionMs = idleLimitMs(roundTripMs) } = this.deadlines;
    const sent = this.client.query(limitIdleTransaction(sql, idleInTransactionMs), parameters);
    return new Promise((resolve, reject) => {
      const fail = (error: Error) => {
        cancel();
        this.pending.delete(fail);
        reject(error);
      };
      this.pending.add(fail);
      const cancel = stallTolerantDeadline(roundTripMs, () => this.discard(timeout('query', roundTripMs)));
      sent.then(
        (result) => {
          if (!this.pending.delete(fail)) return;
          cancel();
          onProgress?.();
          const last = (Array.isArray(result) ? result.at(-1) : result) as { rows?: unknown[] } | undefined;
          resolve(last?.rows ?? []);
        },
        (error: unknown) => {
          // Given up meanwhile ({@link DbSession.abandon}): already failed with that cause, not the socket's end.
          if (!this.pending.has(fail)) return;
          // An error PostgreSQL answered leaves the connection usable; any other one does not.
          fail(error as Error);
          if (!isServerError(error)) this.discard(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  async startTransaction(): Promise<void> {
    await this.query('BEGIN');
    this.isTransactionActive = true;
  }

  async commitTransaction(): Promise<void> {
    try {
      await this.query('COMMIT');
    } finally {
      this.isTransactionActive = false;
    }
  }

  async rollbackTransaction(): Promise<void> {
    this.isTransactionActive = false;
    await this.query('ROLLBACK');
  }

  /** Back to the pool (out of it, if the connection failed). */
  release(): void {
    if (this.done) return;
    this.done = true;
    this.client.removeListener('error', this.onError);
    this.client.release(this.failure ?? undefined);
  }

  /** Gives the connection up: its socket destroyed, out of the pool; a pending query fails at once. */
  abandon(error: Error): void {
    this.discard(error);
  }

  private discard(error: Error): void {
    this.failure ??= error;
    this.release();
    destroy(this.client);
    for (const fail of [...this.pending]) fail(error);
  }
}

/**
 * One statement on a connection of `pool` checked out for it alone, the whole of it within `ms`:
 * the wait for the connection (a connection the pool opens for it is destroyed past that) and
 * its round trip. Past `ms` it rejects with `timeout(step, ms)`, and the connection it holds, if
 * any, leaves the pool with its socket destroyed, so that a server that never answers (a silent
 * network partition) keeps no connection of the pool once the caller has been answered. An error
 * PostgreSQL answers rejects at once and leaves the connection in the pool. The module's short
 * look-ups on the DataSource's pool (a `record()` row confirmed from another connection, the
 * erasures a recovery batch checks) run through it.
 *
 * @example
 * const rows = await queryWithin(pool, 'SELECT 1 FROM audit_log WHERE id = $1::uuid', [id], 2000, (step, ms) => new Error(`${step}: ${ms} ms`));
 */
export function queryWithin(
  pool: DbPool,
  sql: string,
  parameters: unknown[],
  ms: number,
  timeout: (step: 'connect' | 'query', ms: number) => Error,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let session: DbSession | undefined;
    let expired = false;
    // The session's own deadlines: the connection's is the whole call's; the round trip is cut at the call's end below.
    const checkout = DbSession.checkout(pool, { connectMs: ms, roundTripMs: ms, timeout });
    const cancel = stallTolerantDeadline(ms, () => {
      expired = true;
      session?.abandon(timeout('query', ms));
      reject(timeout(session ? 'query' : 'connect', ms));
    });
    checkout.then(
      (checkedOut) => {
        session = checkedOut;
        if (expired) return checkedOut.release();
        checkedOut.query(sql, parameters).then(
          (rows) => {
            cancel();
            checkedOut.release();
            resolve(rows);
          },
          (error: unknown) => {
            cancel();
            checkedOut.release();
            reject(error as Error);
          },
        );
      },
      (error: unknown) => {
        cancel();
        reject(error as Error);
      },
    );
  });
}

function destroy(client: DbClient): void {
  client.connection?.stream?.destroy();
}

function isServerError(error: unknown): boolean {
  const e = error as { severity?: unknown; code?: unknown } | null;
  return typeof e?.severity === 'string' && typeof e.code === 'string';
}

/**
 * The `pg` pool of a TypeORM PostgreSQL DataSource, or null while it is not connected (or not
 * PostgreSQL): the module's own work checks its connections out of it with a {@link DbSession}.
 *
 * @example
 * const pool = dataSourcePool(repository.manager.connection);
 */
export function dataSourcePool(dataSource: { isInitialized?: boolean; driver?: unknown } | undefined): DbPool | null {
  if (!dataSource?.isInitialized) return null;
  const master = (dataSource.driver as { master?: Partial<DbPool> } | undefined)?.master;
  return typeof master?.connect === 'function' ? (master as DbPool) : null;
}
