import { stallTolerantDeadline } from './stall-tolerant-deadline';
import { WRITES_OUTSTANDING_CODE } from './db-error';
import { blockFreeCheckout, type CheckoutPool, type PoolCheckout } from './pool-checkout';
import { insideBlock } from './connection-status';

/** The parts of a `pg` client the writer uses. */
export interface PgClient {
  query(text: string): Promise<unknown>;
  release(error?: Error): void;
  once(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
  connection?: { stream?: { destroy(): void } };
}

/** The parts of a `pg` pool the writer uses (pg-pool's own fields too, to find a connection it opens for an attempt: see {@link CheckoutPool}). */
export type PgPool = CheckoutPool<PgClient>;

/**
 * Sends one query string through a `pg` pool on a client checked out for it, so that a query
 * that misses its deadline can release what it holds: the client is removed from the pool and its
 * socket destroyed (a silent network partition answers nothing, and `pg` would otherwise keep the
 * query and its text for ever, and `Pool.end()` would wait for it). A connection the pool opens
 * for an attempt, at once or later for one that waited in the pool's queue, may take `connectMs`
 * whatever the attempt's deadline (ready late, it serves a later attempt); past that, or at
 * shutdown ({@link BoundedPoolQuery.abandonOpening}), it is destroyed, so that one into a
 * partition never hangs for ever. An attempt still waiting in the pool's queue at its deadline
 * leaves it (see `poolCheckout`): a full pool opens no connection for a batch nobody waits
 * for, which in a silent partition would never be ready nor given up. At most `max`
 * attempts are outstanding at once, counted until their work has really ended (not when the
 * caller stopped waiting); past that, an attempt fails at once with code
 * {@link WRITES_OUTSTANDING_CODE} and sends nothing. No attempt is sent on a connection the pool
 * holds inside a transaction block (see {@link blockFreeCheckout}).
 *
 * @example
 * const queries = new BoundedPoolQuery(4, 5000);
 * await queries.run(pool, () => 'INSERT …', 2000, () => writeTimeoutError(2000));
 */
export class BoundedPoolQuery {
  private active = 0;
  /** Checkouts of attempts whose connection is not ready yet: waiting in the pool's queue, or being opened. */
  private readonly waiting = new Set<PoolCheckout<PgClient>>();

  /**
   * `connectMs`: how long a connection the pool opens for an attempt may take, whatever the
   * attempt's own deadline. `inBlock`: told of each pooled connection found inside a transaction
   * block, which no attempt is sent on (see {@link blockFreeCheckout}).
   */
  constructor(
    readonly max: number,
    private readonly connectMs: number,
    private readonly inBlock?: () => void,
  ) {}

  /** Attempts whose client or query has not settled yet. */
  get outstanding(): number {
    return this.active;
  }

  /**
   * Resolves with the query's result, or rejects with its error, or with `timeout()` after `ms`. A
   * query that ran inside a transaction block the connection was in (its status not known before
   * it was sent: a `pg` too old to keep it) has not committed: the connection leaves the pool with
   * its socket destroyed, so that the server rolls the block back, and the query is sent again on
   * another connection, within the same `ms`.
   */
  run(pool: PgPool, text: () => string, ms: number, timeout: () => Error): Promise<unknown> {
    if (this.active >= this.max) return Promise.reject(writesOutstandingError(this.max));
    this.active += 1;
    // Let go once the deadline passes: a checkout still pending then must not keep the batch alive.
    let build: (() => string) | undefined = text;
    return new Promise((resolve, reject) => {
      let expired = false;
      let checkedOut: CheckedOut | undefined;
      let checkout: PoolCheckout<PgClient>;
      // An answer that came while the event loop was stalled past the deadline is taken.
      const cancel = stallTolerantDeadline(Math.max(0, ms), () => {
        expired = true;
        build = undefined;
        reject(timeout());
        // Still in the pool's queue: it leaves it, and its slot is free again (nothing of it is left to settle).
        checkout.withdraw();
        checkedOut?.discard(timeout());
      });
      const settled = () => {
        cancel();
        this.active -= 1;
      };
      const attempt = () => {
        checkout = blockFreeCheckout(pool, this.inBlock);
        const mine = checkout;
        this.waiting.add(mine);
        // A connection that is slow to open is not given up with the attempt: ready late, it serves the next one.
        // Armed after the deadline: at the same time, a request the deadline found no longer queued has its opening known here.
        const giveUp = stallTolerantDeadline(Math.max(ms, this.connectMs), () => {
          const opening = mine.opening();
          if (opening) destroy(opening);
        });
        const opens = () => {
          giveUp();
          this.waiting.delete(mine);
        };
        mine.client.then(
          (client) => {
            opens();
            checkedOut = new CheckedOut(client);
            if (expired || !build) {
              checkedOut.release();
              settled();
              return;
            }
            void checkedOut.query(build()).then(
              (result) => {
                settled();
                resolve(result);
              },
              (error: unknown) => {
                if (error instanceof RanInBlock && !expired && build) return attempt();
                settled();
                reject(error as Error);
              },
            );
          },
          (error: unknown) => {
            opens();
            settled();
            reject(error as Error);
          },
        );
      };
      attempt();
    });
  }

  /** Gives up every connection still being opened, or waited for in the pool's queue, for an attempt (shutdown: `Pool.end()` would wait for them). */
  abandonOpening(): void {
    // The queue first: a connection given up below would have the pool open one for a request still in it.
    for (const checkout of this.waiting) checkout.withdraw();
    for (const checkout of this.waiting) {
      const opening = checkout.opening();
      if (opening) destroy(opening);
    }
  }
}

/** A client checked out for one query: released once, or discarded (out of the pool, socket destroyed). */
class CheckedOut {
  private released = false;
  private readonly onError = (error: Error) => this.discard(error);

  constructor(private readonly client: PgClient) {
    // A socket error while checked out is ours to handle: unhandled, it would crash the process.
    client.once('error', this.onError);
  }

  /** Rejects with {@link RanInBlock} when the connection is inside a transaction block after the query: nothing of it has committed. */
  async query(text: string): Promise<unknown> {
    let result: unknown;
    try {
      result = await this.client.query(text);
    } catch (error) {
      // An error PostgreSQL answered leaves the connection usable; any other one does not.
      if (isServerError(error)) this.release();
      else this.discard(asError(error));
      throw error;
    }
    if (insideBlock(this.client) === true) {
      // Out of the pool, its socket destroyed: the server rolls the block back, the query's rows with it.
      const error = new RanInBlock();
      this.discard(error);
      throw error;
    }
    this.release();
    return result;
  }

  release(error?: Error): void {
    if (this.released) return;
    this.released = true;
    this.client.removeListener('error', this.onError);
    this.client.release(error);
  }

  /** The pending query fails at once and its text is let go; `Pool.end()` has nothing to wait for. */
  discard(error: Error): void {
    this.release(error);
    destroy(this.client);
  }
}

/** A query that ran inside a transaction block its connection was left in: it has not committed. */
class RanInBlock extends Error {
  constructor() {
    super('audit write ran inside a transaction block left open on its pooled connection');
  }
}

function destroy(client: PgClient): void {
  client.connection?.stream?.destroy();
}

/**
 * The error of a write refused because `max` earlier attempts have not settled (code
 * {@link WRITES_OUTSTANDING_CODE}): nothing more is queued behind them.
 *
 * @example
 * writesOutstandingError(4).message; // 'audit write not sent: 4 earlier writes to the audit database have not settled'
 */
export function writesOutstandingError(max: number): Error & { code: string } {
  return Object.assign(new Error(`audit write not sent: ${max} earlier writes to the audit database have not settled`), {
    code: WRITES_OUTSTANDING_CODE,
  });
}

function isServerError(error: unknown): boolean {
  const e = error as { severity?: unknown; code?: unknown } | null;
  return typeof e?.severity === 'string' && typeof e.code === 'string';
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
