import { EventEmitter } from 'node:events';
import { type SealerClient, type SealerPool, SealerSession, SealTimeoutError } from './sealer-session';

/** A `pg` client double: queries answer as `answer` says; its socket can be destroyed. */
function client(answer: (sql: string) => Promise<unknown>) {
  const emitter = new EventEmitter();
  const double = Object.assign(emitter, {
    query: jest.fn((sql: string) => answer(sql)),
    release: jest.fn<void, [Error?]>(),
    destroyed: jest.fn(),
  });
  return Object.assign(double, { connection: { stream: { destroy: double.destroyed } } }) as typeof double & SealerClient;
}

/** A pool double handing out `checkout`, and noting a connection it opens as pg-pool does. */
function pool(checkout: Promise<SealerClient>, fresh?: SealerClient): SealerPool {
  const clients: SealerClient[] = [];
  return {
    _clients: clients,
    connect: () => {
      if (fresh) clients.push(fresh);
      return checkout;
    },
  };
}

describe('SealerSession', () => {
  // Real immediates: a deadline's verdict waits one turn of the loop (stall-tolerant-deadline.ts).
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate'] }));
  afterEach(() => jest.useRealTimers());

  it('a round trip past its deadline destroys the socket, takes the connection out of the pool and fails every later query at once', async () => {
    const c = client(() => new Promise(() => undefined));
    const session = await SealerSession.open(pool(Promise.resolve(c)), 1000, 500);
    const pending = session.query('SELECT 1');
    jest.advanceTimersByTime(500);
    await expect(pending).rejects.toMatchObject({ code: 'AUDIT_SEAL_TIMEOUT', step: 'query' });
    expect(c.destroyed).toHaveBeenCalled();
    expect(c.release).toHaveBeenCalledWith(expect.any(SealTimeoutError));
    await expect(session.query('SELECT 2')).rejects.toBeInstanceOf(SealTimeoutError);
    expect(c.query).toHaveBeenCalledTimes(1);
    session.release();
    expect(c.release).toHaveBeenCalledTimes(1);
  });

  it('keeps a connection whose server answered with an error, and returns the rows of the last statement', async () => {
    const serverError = Object.assign(new Error('canceling statement due to statement timeout'), { severity: 'ERROR', code: '57014' });
    const c = client((sql) =>
      sql === 'BAD' ? Promise.reject(serverError) : Promise.resolve([{ rows: [] }, { rows: [{ locked: true }] }]),
    );
    const progress = jest.fn();
    const session = await SealerSession.open(pool(Promise.resolve(c)), 1000, 500, progress);
    await expect(session.query('BAD')).rejects.toBe(serverError);
    await expect(session.query('SET …; SELECT …')).resolves.toEqual([{ locked: true }]);
    expect(progress).toHaveBeenCalledTimes(1);
    session.release();
    expect(c.destroyed).not.toHaveBeenCalled();
    expect(c.release).toHaveBeenCalledWith(undefined);
  });

  it('gives up a checkout at connectMs: a connection being opened for it is destroyed, one ready later goes back to the pool', async () => {
    let ready: (client: SealerClient) => void = () => undefined;
    const fresh = client(() => Promise.resolve({ rows: [] }));
    const opening = SealerSession.open(pool(new Promise((resolve) => (ready = resolve)), fresh), 1000, 500);
    jest.advanceTimersByTime(1000);
    await expect(opening).rejects.toMatchObject({ code: 'AUDIT_SEAL_TIMEOUT', step: 'connect' });
    expect(fresh.destroyed).toHaveBeenCalled();
    const late = client(() => Promise.resolve({ rows: [] }));
    ready(late);
    // The connection reaches the session through the checkout's own promise: a few turns of the microtask queue.
    for (let turn = 0; turn < 10 && late.release.mock.calls.length === 0; turn++) await Promise.resolve();
    expect(late.release).toHaveBeenCalledWith();
  });

  it('takes a socket error while checked out (never an unhandled error event), and the connection out of the pool', async () => {
    const c = client(() => Promise.resolve({ rows: [] }));
    const session = await SealerSession.open(pool(Promise.resolve(c)), 1000, 500);
    c.emit('error', new Error('read ECONNRESET'));
    expect(c.release).toHaveBeenCalledWith(expect.objectContaining({ message: 'read ECONNRESET' }));
    await expect(session.query('SELECT 1')).rejects.toThrow('ECONNRESET');
  });
});
