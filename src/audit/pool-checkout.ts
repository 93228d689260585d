import { followStatus, insideBlock } from './connection-status';

/** The parts of a `pg` pool a {@link PoolCheckout} uses: `connect`, and pg-pool's own `_clients`, `_pendingQueue` and `newClient`, read or watched only to know which connection it opens for the checkout. */
export interface CheckoutPool<C> {
  connect(): Promise<C>;
  _clients?: unknown;
  _pendingQueue?: unknown;
  newClient?: (item: unknown) => unknown;
}

/**
 * One checkout of a connection from a `pg` pool that its caller can give up without leaving
 * anything behind. A pool with every connection taken queues the request and, once a connection
 * leaves the pool, opens a new one for it; in a silent network partition that opening never ends
 * (`pg` has no deadline of its own unless the DataSource sets `connectTimeoutMS`), so a checkout
 * given up at its deadline would leave the pool one connection short for good, and each such
 * checkout one more. Here a checkout given up while still queued leaves the queue
 * ({@link PoolCheckout.withdraw}), and the connection the pool opens for it, at once or later
 * from the queue, is known ({@link PoolCheckout.opening}) until it is ready, so that its caller can
 * destroy it. With a pool that has no such fields (a test double), only a connection opened at
 * once is known, by `_clients` growing.
 *
 * @example
 * const checkout = poolCheckout(pool);
 * setTimeout(() => checkout.withdraw(), 2000); // still queued then: the pool opens no connection for it
 * const client = await checkout.client;
 */
export interface PoolCheckout<C> {
  /** The connection, once the pool hands it; rejects when the pool fails to open it, or once {@link withdraw} took the request out of the queue. */
  readonly client: Promise<C>;
  /** The connection the pool is opening for this checkout, until it is ready or has failed. */
  opening(): C | undefined;
  /** Takes the request out of the pool's queue if it is still there (the pool then never opens a connection for it) and rejects {@link client}; true if it did. */
  withdraw(): boolean;
  /** Whether the request waits in the pool's queue now (every connection taken, the pool at its size). */
  queued(): boolean;
}

/** The checkout whose call of `connect()` is under way: a connection the pool opens during it is its. */
let connecting: ((client: unknown) => void) | undefined;
/** Queued requests of checkouts, each with what to tell when the pool opens a connection for it. */
const queued = new WeakMap<object, (client: unknown) => void>();
const watched = new WeakSet<object>();

/**
 * Checks a connection out of `pool` (see {@link PoolCheckout}).
 *
 * @example
 * const { client, withdraw } = poolCheckout(pool);
 */
export function poolCheckout<C>(pool: CheckoutPool<C>): PoolCheckout<C> {
  watchOpenings(pool);
  let opened: C | undefined;
  let settled = false;
  const told = (client: unknown) => {
    if (!settled) opened = client as C;
  };
  const clients = Array.isArray(pool._clients) ? (pool._clients as unknown[]) : undefined;
  const before = clients?.length ?? -1;
  const queue = Array.isArray(pool._pendingQueue) ? (pool._pendingQueue as unknown[]) : undefined;
  const waiting = queue?.length ?? -1;
  let checkout: Promise<C>;
  connecting = told;
  try {
    checkout = pool.connect();
  } finally {
    connecting = undefined;
  }
  // Without pg-pool's `newClient` to watch: pg-pool adds a connection it opens to `_clients` at once, before it connects.
  const after = pool._clients;
  if (opened === undefined && Array.isArray(after) && before >= 0 && after.length === before + 1) opened = after[before] as C;
  const item = queue && waiting >= 0 && queue.length === waiting + 1 ? (queue[waiting] as object) : undefined;
  if (item) queued.set(item, told);
  let withdrawn: ((error: Error) => void) | undefined;
  const client = new Promise<C>((resolve, reject) => {
    withdrawn = reject;
    checkout.then(
      (ready) => {
        settled = true;
        opened = undefined;
        resolve(ready);
      },
      (error: unknown) => {
        settled = true;
        opened = undefined;
        reject(error as Error);
      },
    );
  });
  return {
    client,
    opening: () => opened,
    queued: () => !settled && item !== undefined && queue !== undefined && queue.includes(item),
    withdraw: () => {
      const at = item && queue ? queue.indexOf(item) : -1;
      if (!item || !queue || at < 0) return false;
      queue.splice(at, 1);
      // pg-pool's own mark for a request it gave up (its connectionTimeoutMillis): never called back.
      (item as { timedOut?: boolean }).timedOut = true;
      settled = true;
      withdrawn?.(new Error('connection request withdrawn from the pool'));
      return true;
    },
  };
}

/** Watches the connections `pool` opens (once per pool), to tell a checkout of the one opened for its request. */
function watchOpenings<C>(pool: CheckoutPool<C>): void {
  const newClient = pool.newClient;
  if (typeof newClient !== 'function' || watched.has(pool)) return;
  watched.add(pool);
  pool.newClient = function (this: CheckoutPool<C>, item: unknown) {
    const tell = (typeof item === 'object' && item !== null ? queued.get(item) : undefined) ?? connecting;
    const result = newClient.call(this, item);
    const clients = this._clients;
    if (tell && Array.isArray(clients) && clients.length > 0) tell(clients[clients.length - 1]);
    return result;
  };
}

/** The parts of a pooled connection a {@link blockFreeCheckout} uses: back to the pool, or out of it with an error. */
export interface PooledClient {
  release(error?: Error): void;
  on?(event: 'error', listener: (error: Error) => void): unknown;
  removeListener?(event: 'error', listener: (error: Error) => void): unknown;
}

/** Held out of the pool, a connection's socket error is ours: unheard, it would end the process (pg-pool listens only while it is idle). */
const ignoreError = () => undefined;

/**
 * A {@link poolCheckout} that never hands a connection the pool holds inside a transaction block
 * (`pg`'s status `T` or `E` at its last answer). Such a connection is one a query runner was
 * released in without a rollback (TypeORM's `release()` does not roll back), or one that ran a
 * `BEGIN` sent as SQL through the DataSource: anything sent on it runs inside that block, and
 * commits only if the block does. It is kept out of the pool while another is found (pg-pool hands
 * its idle connections last in, first out, and would hand it again), then goes back to the pool as
 * it was, its block untouched; `found` is told of it. Only when the pool has no other connection to
 * give nor room to open one is such a connection given up (released with an error: the pool closes
 * it, and the server rolls its block back) to make that room. Where the status is not known (see
 * {@link insideBlock}) the connection is taken, as by {@link poolCheckout}.
 *
 * @example
 * const checkout = blockFreeCheckout(pool, () => warnOnce());
 * const client = await checkout.client; // idle: a query sent on it commits on its own
 */
export function blockFreeCheckout<C extends PooledClient>(pool: CheckoutPool<C>, found?: (client: C) => void): PoolCheckout<C> {
  const held: C[] = [];
  let current = poolCheckout(pool);
  let withdrawn = false;
  const next = () => {
    current = poolCheckout(pool);
    // The pool is at its size with no other connection idle: one in a block makes room.
    while (current.queued() && held.length > 0) {
      current.client.catch(() => undefined);
      current.withdraw();
      const given = held.shift();
      given?.removeListener?.('error', ignoreError);
      given?.release(new Error('pooled connection left inside a transaction block'));
      current = poolCheckout(pool);
    }
  };
  const client = (async () => {
    try {
      for (;;) {
        const ready = await current.client;
        followStatus(ready);
        if (insideBlock(ready) !== true) return ready;
        ready.on?.('error', ignoreError);
        held.push(ready);
        found?.(ready);
        if (withdrawn) throw new Error('connection request withdrawn from the pool');
        next();
      }
    } finally {
      // Back to the pool as they were, once this checkout has its connection (or has failed).
      for (const kept of held.splice(0)) {
        kept.removeListener?.('error', ignoreError);
        kept.release();
      }
    }
  })();
  return {
    client,
    opening: () => current.opening(),
    queued: () => current.queued(),
    withdraw: () => {
      withdrawn = true;
      return current.withdraw();
    },
  };
}
