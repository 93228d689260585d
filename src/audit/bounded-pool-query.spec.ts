import { EventEmitter } from 'node:events';
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

const timeout = () => Object.assign(new Error('audit write not committed within 100 ms'), { code: 'AUDIT_WRITE_TIMEOUT' });
const never = () => new Promise<unknown>(() => undefined);

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
});
