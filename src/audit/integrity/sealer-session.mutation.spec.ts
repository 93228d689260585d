import { EventEmitter } from 'node:events';
import { SEAL_TIMEOUT_CODE, type SealerClient, type SealerPool, SealerSession, SealTimeoutError } from './sealer-session';

/** A `pg` client double: queries answer as `answer` says; its socket can be destroyed. */
function client(answer: (sql: string) => Promise<unknown> = () => Promise.resolve({ rows: [] })) {
  const emitter = new EventEmitter();
  const double = Object.assign(emitter, {
    query: jest.fn((sql: string) => answer(sql)),
    release: jest.fn<void, [Error?]>(),
    destroyed: jest.fn(),
  });
  return Object.assign(double, { connection: { stream: { destroy: double.destroyed } } }) as typeof double & SealerClient;
}

/** A pool double: `idle` connections in its list, `checkout` handed out, `fresh` added to the list as pg-pool adds one it opens. */
function pool(checkout: Promise<SealerClient>, { idle = [], fresh }: { idle?: SealerClient[]; fresh?: SealerClient } = {}): SealerPool {
  const clients = [...idle];
  return {
    _clients: clients,
    connect: () => {
      if (fresh) clients.push(fresh);
      return checkout;
    },
  };
}
const never = <T>() => new Promise<T>(() => undefined);
const settled = async (promise: Promise<unknown>) => {
  let state = 'pending';
  promise.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return state;
};

describe('SealerSession, step by step', () => {
  // Real immediates: a deadline's verdict waits one turn of the loop (stall-tolerant-deadline.ts).
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate'] }));
  afterEach(() => jest.useRealTimers());

  it('names each step that missed its deadline, with a stable code', () => {
    const connect = new SealTimeoutError('connect', 5000);
    expect(connect).toMatchObject({ name: 'SealTimeoutError', code: 'AUDIT_SEAL_TIMEOUT', step: 'connect', timeoutMs: 5000 });
    expect(SEAL_TIMEOUT_CODE).toBe('AUDIT_SEAL_TIMEOUT');
    expect(connect.message).toBe('AUDIT_SEAL_TIMEOUT: the sealer got no connection within 5000 ms');
    expect(new SealTimeoutError('query', 800).message).toBe("AUDIT_SEAL_TIMEOUT: the sealer's query got no answer within 800 ms");
    expect(new SealTimeoutError('attempt', 9).message).toBe('AUDIT_SEAL_TIMEOUT: the sealing attempt made no progress for 9 ms');
  });

  it('waits for a connection exactly connectMs, and destroys none the pool already had', async () => {
    const idle = client();
    const opening = SealerSession.open(pool(never(), { idle: [idle] }), 1000, 500);
    jest.advanceTimersByTime(999);
    expect(await settled(opening)).toBe('pending');
    jest.advanceTimersByTime(1);
    await expect(opening).rejects.toMatchObject({ step: 'connect', timeoutMs: 1000 });
    expect(idle.destroyed).not.toHaveBeenCalled();
    // A pool that does not show its list: nothing to destroy, the deadline still holds.
    const bare = SealerSession.open({ connect: () => never() }, 300, 500);
    jest.advanceTimersByTime(300);
    await expect(bare).rejects.toMatchObject({ step: 'connect' });
  });

  it('destroys the connection the pool opened for it after its idle ones, and not one handed out in time', async () => {
    const idle = client();
    const fresh = client();
    const opening = SealerSession.open(pool(never(), { idle: [idle], fresh }), 1000, 500);
    jest.advanceTimersByTime(1000);
    await expect(opening).rejects.toMatchObject({ step: 'connect' });
    expect(fresh.destroyed).toHaveBeenCalledTimes(1);
    expect(idle.destroyed).not.toHaveBeenCalled();

    const quick = client();
    const session = await SealerSession.open(pool(Promise.resolve(quick), { fresh: quick }), 1000, 500);
    jest.advanceTimersByTime(5000);
    expect(quick.destroyed).not.toHaveBeenCalled();
    expect(quick.release).not.toHaveBeenCalled();
    session.release();
  });

  it('fails as the pool fails, at once', async () => {
    const refused = new Error('connect ECONNREFUSED');
    await expect(SealerSession.open(pool(Promise.reject(refused)), 1000, 500)).rejects.toBe(refused);
  });

  it('answers a round trip up to roundTripMs, with the rows of its last result, and tells progress of each answer', async () => {
    let answer: (value: unknown) => void = () => undefined;
    const c = client(() => new Promise((resolve) => (answer = resolve)));
    const progress = jest.fn();
    const session = await SealerSession.open(pool(Promise.resolve(c)), 1000, 500, progress);
    const pending = session.query('SELECT $1', [1]);
    expect(c.query).toHaveBeenCalledWith('SELECT $1', [1]);
    jest.advanceTimersByTime(499);
    expect(await settled(pending)).toBe('pending');
    answer({ rows: [{ n: 1 }] });
    await expect(pending).resolves.toEqual([{ n: 1 }]);
    expect(progress).toHaveBeenCalledTimes(1);
    jest.advanceTimersByTime(1000);
    expect(c.destroyed).not.toHaveBeenCalled();
    for (const result of [undefined, {}, [{ rows: [1] }, {}]]) {
      const next = session.query('SELECT');
      answer(result);
      await expect(next).resolves.toEqual([]);
    }
  });

  it('gives a connection up on an error that is not the server’s answer, the first error kept', async () => {
    const dropped = new Error('Connection terminated unexpectedly');
    const c = client(() => Promise.reject(dropped));
    const progress = jest.fn();
    const session = await SealerSession.open(pool(Promise.resolve(c)), 1000, 500, progress);
    await expect(session.query('SELECT 1')).rejects.toBe(dropped);
    expect(progress).not.toHaveBeenCalled();
    expect(c.destroyed).toHaveBeenCalled();
    expect(c.release).toHaveBeenCalledWith(dropped);
    session.abandon(new Error('later'));
    await expect(session.query('SELECT 2')).rejects.toBe(dropped);
    expect(c.query).toHaveBeenCalledTimes(1);

    for (const error of ['a text', { code: '57014' }, { severity: 'ERROR' }, null]) {
      const other = client(() => Promise.reject(error));
      const s = await SealerSession.open(pool(Promise.resolve(other)), 1000, 500);
      await expect(s.query('SELECT')).rejects.toBe(error);
      expect(other.destroyed).toHaveBeenCalled();
      expect(other.release).toHaveBeenCalledWith(expect.any(Error));
    }
  });

  it('abandons a connection on request: socket destroyed, out of the pool, the pending query failed', async () => {
    const c = client(() => never());
    const session = await SealerSession.open(pool(Promise.resolve(c)), 1000, 500);
    const stop = new Error('attempt stalled');
    session.abandon(stop);
    expect(c.destroyed).toHaveBeenCalledTimes(1);
    expect(c.release).toHaveBeenCalledWith(stop);
    await expect(session.query('SELECT')).rejects.toBe(stop);
    // A client without a socket to destroy is given up all the same.
    const bare = Object.assign(new EventEmitter(), { query: () => never(), release: jest.fn() }) as unknown as SealerClient;
    const s = await SealerSession.open(pool(Promise.resolve(bare)), 1000, 500);
    expect(() => s.abandon(stop)).not.toThrow();
    const unconnected = Object.assign(new EventEmitter(), {
      query: () => never(),
      release: jest.fn(),
      connection: {},
    }) as unknown as SealerClient;
    const u = await SealerSession.open(pool(Promise.resolve(unconnected)), 1000, 500);
    expect(() => u.abandon(stop)).not.toThrow();
  });

  it('keeps the transaction state as TypeORM does: active after BEGIN, inactive after COMMIT (failed or not) and ROLLBACK', async () => {
    let fail = false;
    const c = client((sql) =>
      fail && sql === 'COMMIT'
        ? Promise.reject(Object.assign(new Error('x'), { severity: 'ERROR', code: '40001' }))
        : Promise.resolve({ rows: [] }),
    );
    const session = await SealerSession.open(pool(Promise.resolve(c)), 1000, 500);
    expect(session.isTransactionActive).toBe(false);
    await session.startTransaction();
    expect(session.isTransactionActive).toBe(true);
    await session.commitTransaction();
    expect(session.isTransactionActive).toBe(false);
    await session.startTransaction();
    fail = true;
    await expect(session.commitTransaction()).rejects.toThrow('x');
    expect(session.isTransactionActive).toBe(false);
    await session.startTransaction();
    await session.rollbackTransaction();
    expect(session.isTransactionActive).toBe(false);
    // Each BEGIN limits its idle transaction on the server: the round trip's deadline (500 ms) plus a second.
    const begin = "BEGIN; SET LOCAL idle_in_transaction_session_timeout = '1500ms'";
    expect(c.query.mock.calls.map(([sql]) => sql)).toEqual([begin, 'COMMIT', begin, 'COMMIT', begin, 'ROLLBACK']);
  });

  it('releases once, and stops listening for socket errors when released', async () => {
    const c = client();
    const session = await SealerSession.open(pool(Promise.resolve(c)), 1000, 500);
    expect(c.listenerCount('error')).toBe(1);
    session.release();
    session.release();
    expect(c.release).toHaveBeenCalledTimes(1);
    expect(c.release).toHaveBeenCalledWith(undefined);
    expect(c.listenerCount('error')).toBe(0);
  });
});
