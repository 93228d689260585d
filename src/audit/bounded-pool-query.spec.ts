import { EventEmitter } from 'node:events';
import { type ClientBase, Pool } from 'pg';
import { BoundedPoolQuery, type PgClient, type PgPool } from './bounded-pool-query';
import { WRITES_OUTSTANDING_CODE } from './db-error';

/** A pg client double: `query` answers as the test says; `released` and `destroyed` record what the pool and socket saw. */
class FakeClient extends EventEmitter implements PgClient {
  released: (Error | undefined)[] = [];
  destroyed = false;
  sent: string[] = [];
  answer: () => Promise<unknown> = () => Promise.resolve({ rowCount: 1 });
  private failPending: ((error: Error) => void) | undefined;
  readonly connection = {
    stream: {
      destroy: () => {
        this.destroyed = true;
        this.failPending?.(new Error('Connection terminated'));
      },
    },
  };

  query(text: string): Promise<unknown> {
    this.sent.push(text);
    return new Promise((resolve, reject) => {
      this.failPending = reject;
      this.answer().then(resolve, reject);
    });
  }

  release(error?: Error): void {
    this.released.push(error);
  }
}

/** A pool double whose checkouts the test settles; `_clients` grows when it "opens" a connection. */
class FakePool implements PgPool {
  _clients: FakeClient[] = [];
  readonly checkouts: { resolve: (c: FakeClient) => void; reject: (e: Error) => void }[] = [];
  opens = false;

  connect(): Promise<FakeClient> {
    if (this.opens) this._clients.push(new FakeClient());
    return new Promise((resolve, reject) => this.checkouts.push({ resolve, reject }));
  }
}

/**
 * A connection for pg-pool's own `Pool` (its queue and its openings are what is tested): it is
 * ready at once when `ready`, else its opening never ends (a silent partition) until its socket is
 * destroyed; its queries never answer until then.
 */
class PoolClientDouble extends EventEmitter {
  destroyed = false;
  _queryable = true;
  _ending = false;
  release!: (error?: Error) => void;
  private connected: ((error?: Error) => void) | undefined;
  private failPending: ((error: Error) => void) | undefined;
  readonly connection = {
    stream: {
      destroy: () => {
        this.destroyed = true;
        this._queryable = false;
        const error = new Error('Connection terminated');
        const connected = this.connected;
        this.connected = undefined;
        // As a socket's: its end is told later, not inside destroy().
        void Promise.resolve().then(() => {
          connected?.(error);
          this.failPending?.(error);
        });
      },
    },
  };

  constructor(private readonly ready: boolean) {
    super();
  }

  connect(callback: (error?: Error) => void): void {
    if (this.ready) void Promise.resolve().then(() => callback());
    else this.connected = callback;
  }

  query(): Promise<unknown> {
    return new Promise((_, reject) => (this.failPending = reject));
  }

  end(callback?: () => void): void {
    this._ending = true;
    callback?.();
  }
}

/** A `pg` pool of `max` connections whose first `ready` connections open at once and the others never; `made` lists each it opened. */
function partitionedPool(max: number, ready: number): { pool: Pool; made: PoolClientDouble[] } {
  const made: PoolClientDouble[] = [];
  class Connection extends PoolClientDouble {
    constructor() {
      super(made.length < ready);
      made.push(this);
    }
  }
  const pool = new Pool({ max, Client: Connection as unknown as new () => ClientBase });
  pool.on('error', () => undefined);
  return { pool, made };
}

/** Every callback and promise due now has run (a real immediate: after the microtasks). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

const timeout = () => Object.assign(new Error('audit write not committed within 100 ms'), { code: 'AUDIT_WRITE_TIMEOUT' });
const never = () => new Promise<unknown>(() => undefined);

/**
 * A connection for pg-pool's own `Pool` that answers every query at once and keeps the transaction
 * status PostgreSQL would (`BEGIN` opens a block, `COMMIT`/`ROLLBACK` ends it): through
 * `getTransactionStatus()` as newer `pg` does, or, as older `pg`, only in the ReadyForQuery
 * messages its protocol connection emits.
 */
class StatusClientDouble extends EventEmitter {
  status = 'I';
  sent: string[] = [];
  destroyed = false;
  ended = false;
  _queryable = true;
  _ending = false;
  release!: (error?: Error) => void;
  readonly connection = Object.assign(new EventEmitter(), {
    stream: {
      destroy: () => {
        this.destroyed = true;
        this._queryable = false;
      },
    },
  });

  connect(callback: (error?: Error) => void): void {
    void Promise.resolve().then(() => callback());
  }

  query(text: string): Promise<unknown> {
    this.sent.push(text);
    if (/^BEGIN/.test(text)) this.status = 'T';
    else if (/^(COMMIT|ROLLBACK)/.test(text)) this.status = 'I';
    this.connection.emit('readyForQuery', { status: this.status });
    return Promise.resolve({ rowCount: 1 });
  }

  end(callback?: () => void): void {
    this.ended = true;
    this._ending = true;
    callback?.();
  }
}

/** A `pg` pool of `max` {@link StatusClientDouble}s, with `getTransactionStatus()` when `keepsStatus`; `made` lists each it opened. */
function statusPool(max: number, keepsStatus: boolean): { pool: Pool; made: StatusClientDouble[] } {
  const made: StatusClientDouble[] = [];
  class Connection extends StatusClientDouble {
    constructor() {
      super();
      made.push(this);
    }
  }
  if (keepsStatus)
    Object.assign(Connection.prototype, {
      getTransactionStatus: function (this: StatusClientDouble) {
        return this.status;
      },
    });
  const pool = new Pool({ max, Client: Connection as unknown as new () => ClientBase });
  pool.on('error', () => undefined);
  return { pool, made };
}

/** A runner's error path that releases its connection without a rollback: back in the pool inside a block. */
async function leaveInBlock(pool: Pool): Promise<void> {
  const client = await pool.connect();
  await client.query('BEGIN');
  client.release();
}

describe('BoundedPoolQuery', () => {
  // Real immediates: a deadline's verdict waits one turn of the loop (stall-tolerant-deadline.ts).
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate'] }));
  afterEach(() => jest.useRealTimers());

  it('runs the query on a checked-out client and gives it back to the pool', async () => {
    const pool = new FakePool();
    const queries = new BoundedPoolQuery(4, 5000);
    const client = new FakeClient();
    const run = queries.run(pool, () => 'INSERT 1', 100, timeout);
    pool.checkouts[0].resolve(client);
    await expect(run).resolves.toEqual({ rowCount: 1 });
    expect(client).toMatchObject({ sent: ['INSERT 1'], released: [undefined], destroyed: false });
    expect(queries.outstanding).toBe(0);
  });

  it('a query that misses its deadline: the caller hears at once, the client leaves the pool and its socket is destroyed', async () => {
    const pool = new FakePool();
    const queries = new BoundedPoolQuery(4, 5000);
    const client = new FakeClient();
    client.answer = never;
    const run = queries.run(pool, () => 'INSERT 1', 100, timeout);
    pool.checkouts[0].resolve(client);
    await Promise.resolve();
    jest.advanceTimersByTime(100);
    await expect(run).rejects.toMatchObject({ code: 'AUDIT_WRITE_TIMEOUT' });
    expect(client.released).toEqual([expect.objectContaining({ code: 'AUDIT_WRITE_TIMEOUT' })]);
    expect(client.destroyed).toBe(true);
    await jest.runAllTimersAsync();
    expect(queries.outstanding).toBe(0);
  });

  it('keeps a connection after an error PostgreSQL answered, and throws one away after any other error', async () => {
    const pool = new FakePool();
    const queries = new BoundedPoolQuery(4, 5000);
    const refused = new FakeClient();
    refused.answer = () => Promise.reject(Object.assign(new Error('check constraint'), { severity: 'ERROR', code: '23514' }));
    const broken = new FakeClient();
    broken.answer = () => Promise.reject(new Error('Connection terminated unexpectedly'));
    const first = queries.run(pool, () => 'INSERT 1', 100, timeout);
    const second = queries.run(pool, () => 'INSERT 2', 100, timeout);
    pool.checkouts[0].resolve(refused);
    pool.checkouts[1].resolve(broken);
    await expect(first).rejects.toMatchObject({ code: '23514' });
    await expect(second).rejects.toThrow('Connection terminated unexpectedly');
    expect(refused).toMatchObject({ released: [undefined], destroyed: false });
    expect(broken).toMatchObject({ released: [expect.any(Error)], destroyed: true });
  });

  it('a client checked out after the deadline goes back unused, and the SQL text is never built', async () => {
    const pool = new FakePool();
    const queries = new BoundedPoolQuery(4, 5000);
    const text = jest.fn(() => 'INSERT 1');
    const run = queries.run(pool, text, 100, timeout);
    jest.advanceTimersByTime(100);
    await expect(run).rejects.toMatchObject({ code: 'AUDIT_WRITE_TIMEOUT' });
    expect(queries.outstanding).toBe(1);
    const late = new FakeClient();
    pool.checkouts[0].resolve(late);
    await jest.runAllTimersAsync();
    expect(late).toMatchObject({ released: [undefined], sent: [] });
    expect(text).not.toHaveBeenCalled();
    expect(queries.outstanding).toBe(0);
  });

  it('holds at most `max` attempts outstanding: the next one fails at once and asks the pool for nothing', async () => {
    const pool = new FakePool();
    const queries = new BoundedPoolQuery(4, 5000);
    const runs = Array.from({ length: 4 }, () => queries.run(pool, () => 'INSERT', 100, timeout));
    runs.forEach((run) => run.catch(() => undefined));
    jest.advanceTimersByTime(100);
    await expect(queries.run(pool, () => 'INSERT', 100, timeout)).rejects.toMatchObject({ code: WRITES_OUTSTANDING_CODE });
    expect(pool.checkouts).toHaveLength(4);
    pool.checkouts[0].reject(new Error('timeout exceeded when trying to connect'));
    await jest.runAllTimersAsync();
    expect(queries.outstanding).toBe(3);
  });

  it('a connection opened for an attempt may outlive its deadline up to connectMs, then is destroyed; abandonOpening destroys it at once', async () => {
    const pool = new FakePool();
    pool.opens = true;
    const queries = new BoundedPoolQuery(4, 5000);
    const first = queries.run(pool, () => 'INSERT 1', 100, timeout);
    first.catch(() => undefined);
    jest.advanceTimersByTime(100);
    expect(pool._clients[0].destroyed).toBe(false);
    jest.advanceTimersByTime(4900);
    await new Promise((resolve) => setImmediate(resolve));
    expect(pool._clients[0].destroyed).toBe(true);

    const second = queries.run(pool, () => 'INSERT 2', 100, timeout);
    second.catch(() => undefined);
    queries.abandonOpening();
    expect(pool._clients[1].destroyed).toBe(true);
  });

  describe('on a full pool (pg-pool, its connections opening into a silent partition)', () => {
    it('an attempt still in the pool queue at its deadline leaves it: no connection is opened for it, and its slot is free', async () => {
      const { pool, made } = partitionedPool(1, 1);
      const queries = new BoundedPoolQuery(4, 5000);
      // The pool's one connection, taken by a query that never answers.
      const first = queries.run(pool as unknown as PgPool, () => 'INSERT 1', 200, timeout);
      first.catch(() => undefined);
      await settle();
      const queued = queries.run(pool as unknown as PgPool, () => 'INSERT 2', 100, timeout);
      queued.catch(() => undefined);
      expect(pool.waitingCount).toBe(1);
      await jest.advanceTimersByTimeAsync(100);
      await settle();
      await expect(queued).rejects.toMatchObject({ code: 'AUDIT_WRITE_TIMEOUT' });
      const waitingAfterDeadline = pool.waitingCount;
      // The first one's connection leaves the pool at its deadline: nobody waits, nothing is opened.
      await jest.advanceTimersByTimeAsync(100);
      await settle();
      await expect(first).rejects.toMatchObject({ code: 'AUDIT_WRITE_TIMEOUT' });
      await jest.advanceTimersByTimeAsync(10_000);
      expect({ waitingAfterDeadline, opened: made.length, inPool: pool.totalCount, outstanding: queries.outstanding }).toEqual({
        waitingAfterDeadline: 0,
        opened: 1,
        inPool: 0,
        outstanding: 0,
      });
    });

    it('a connection the pool opens later for an attempt that waited in its queue is destroyed after connectMs, as one opened at once', async () => {
      const { pool, made } = partitionedPool(1, 1);
      const queries = new BoundedPoolQuery(4, 5000);
      const first = queries.run(pool as unknown as PgPool, () => 'INSERT 1', 100, timeout);
      first.catch(() => undefined);
      await settle();
      const queued = queries.run(pool as unknown as PgPool, () => 'INSERT 2', 200, timeout);
      queued.catch(() => undefined);
      // The first one's connection leaves the pool at its deadline: the pool opens one for the queued attempt, which never gets ready.
      await jest.advanceTimersByTimeAsync(100);
      await settle();
      expect({ opened: made.length, waiting: pool.waitingCount }).toEqual({ opened: 2, waiting: 0 });
      await jest.advanceTimersByTimeAsync(100);
      await settle();
      await expect(queued).rejects.toMatchObject({ code: 'AUDIT_WRITE_TIMEOUT' });
      // Not given up with the attempt: ready late, it would serve the next one.
      expect(made[1].destroyed).toBe(false);
      await jest.advanceTimersByTimeAsync(4800);
      await settle();
      await settle();
      expect({ destroyed: made[1].destroyed, inPool: pool.totalCount, outstanding: queries.outstanding }).toEqual({
        destroyed: true,
        inPool: 0,
        outstanding: 0,
      });
    });

    it('abandonOpening withdraws an attempt still queued and destroys a connection still opening: the pool can end', async () => {
      const { pool, made } = partitionedPool(1, 0);
      const queries = new BoundedPoolQuery(4, 5000);
      const opening = queries.run(pool as unknown as PgPool, () => 'INSERT 1', 100, timeout);
      const queued = queries.run(pool as unknown as PgPool, () => 'INSERT 2', 100, timeout);
      opening.catch(() => undefined);
      queued.catch(() => undefined);
      expect({ opened: made.length, waiting: pool.waitingCount }).toEqual({ opened: 1, waiting: 1 });
      queries.abandonOpening();
      // As at shutdown: the pool hears of the destroyed connection before the DataSource ends it.
      await settle();
      let ended = false;
      void pool.end().then(() => (ended = true));
      await settle();
      expect({
        destroyed: made[0].destroyed,
        opened: made.length,
        waiting: pool.waitingCount,
        ended,
        outstanding: queries.outstanding,
      }).toEqual({
        destroyed: true,
        opened: 1,
        waiting: 0,
        ended: true,
        outstanding: 0,
      });
    });
  });
  describe('beside a pooled connection left inside a transaction block (pg-pool)', () => {
    // pg-pool hands an idle connection on a later tick: real ones here, nothing waits for a deadline.
    beforeEach(() => jest.useRealTimers());

    it('sends the batch on another connection and gives the one in a block back as it was', async () => {
      const { pool, made } = statusPool(10, true);
      const found = jest.fn();
      const queries = new BoundedPoolQuery(4, 5000, found);
      await leaveInBlock(pool);
      await expect(queries.run(pool as unknown as PgPool, () => 'INSERT 1', 100, timeout)).resolves.toBeDefined();
      expect({
        left: { sent: made[0].sent, destroyed: made[0].destroyed, status: made[0].status },
        other: { sent: made[1].sent, status: made[1].status },
        inPool: pool.totalCount,
        idle: pool.idleCount,
        found: found.mock.calls.length,
      }).toEqual({
        left: { sent: ['BEGIN'], destroyed: false, status: 'T' },
        other: { sent: ['INSERT 1'], status: 'I' },
        inPool: 2,
        idle: 2,
        found: 1,
      });
      await pool.end();
    });

    it('with the pool at its size and no other connection, gives the one in a block up to open a clean one', async () => {
      const { pool, made } = statusPool(1, true);
      const queries = new BoundedPoolQuery(4, 5000, jest.fn());
      await leaveInBlock(pool);
      await expect(queries.run(pool as unknown as PgPool, () => 'INSERT 1', 100, timeout)).resolves.toBeDefined();
      expect({ leftEnded: made[0].ended, sentOnLeft: made[0].sent, other: made[1].sent, inPool: pool.totalCount }).toEqual({
        leftEnded: true,
        sentOnLeft: ['BEGIN'],
        other: ['INSERT 1'],
        inPool: 1,
      });
      await pool.end();
    });

    it('with a pg that keeps no status: a batch that ran inside a block is rolled back with its connection and sent again on another', async () => {
      const { pool, made } = statusPool(10, false);
      const queries = new BoundedPoolQuery(4, 5000);
      await leaveInBlock(pool);
      await expect(queries.run(pool as unknown as PgPool, () => 'INSERT 1', 100, timeout)).resolves.toBeDefined();
      expect({
        left: { sent: made[0].sent, destroyed: made[0].destroyed },
        other: made[1].sent,
        inPool: pool.totalCount,
        outstanding: queries.outstanding,
      }).toEqual({
        left: { sent: ['BEGIN', 'INSERT 1'], destroyed: true },
        other: ['INSERT 1'],
        inPool: 1,
        outstanding: 0,
      });
      await pool.end();
    });
  });
});
