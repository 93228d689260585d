import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DbClient, type DbPool, dataSourcePool, DbSession } from './db-session';

/** A `pg` client double: queries answer as `answer` says; its socket can be destroyed. */
function client(answer: (sql: string) => Promise<unknown>) {
  const emitter = new EventEmitter();
  const double = Object.assign(emitter, {
    query: jest.fn((sql: string) => answer(sql)),
    release: jest.fn<void, [Error?]>(),
    destroyed: jest.fn(),
  });
  return Object.assign(double, { connection: { stream: { destroy: double.destroyed } } }) as typeof double & DbClient;
}

const pool = (c: DbClient): DbPool => ({ connect: () => Promise.resolve(c) });
const timeout = (step: 'connect' | 'query', ms: number) => Object.assign(new Error(`${step} ${ms}`), { code: 'LATE' });

describe('DbSession', () => {
  // Real immediates: a deadline's verdict waits one turn of the loop (stall-tolerant-deadline.ts).
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate'] }));
  afterEach(() => jest.useRealTimers());

  it('fails a step past its deadline with the error its owner chose, and is then failed', async () => {
    const c = client(() => new Promise(() => undefined));
    const session = await DbSession.checkout(pool(c), { connectMs: 1000, roundTripMs: 300, timeout });
    expect(session.failed).toBe(false);
    const pending = session.query('SELECT 1');
    jest.advanceTimersByTime(300);
    await expect(pending).rejects.toMatchObject({ message: 'query 300', code: 'LATE' });
    expect({ failed: session.failed, destroyed: c.destroyed.mock.calls.length }).toEqual({ failed: true, destroyed: 1 });
  });

  it("a query pending when the session is abandoned fails with the abandon's error, not the socket's end", async () => {
    let fail: (error: Error) => void = () => undefined;
    const c = client(() => new Promise((_, reject) => (fail = reject)));
    const session = await DbSession.checkout(pool(c), { connectMs: 1000, roundTripMs: 60_000, timeout });
    const pending = session.query('SELECT 1');
    const shutdown = new Error('shutting down');
    session.abandon(shutdown);
    fail(new Error('Connection terminated'));
    await expect(pending).rejects.toBe(shutdown);
    expect(c.release).toHaveBeenCalledWith(shutdown);
  });

  it('limits the idle time of every transaction it begins on the server, in the BEGIN round trip', async () => {
    const c = client(() => Promise.resolve({ rows: [] }));
    const session = await DbSession.checkout(pool(c), { connectMs: 1000, roundTripMs: 5200, timeout });
    await session.startTransaction();
    await session.query(`BEGIN; SET LOCAL statement_timeout = '5000ms'`);
    await session.query('SELECT 1');
    const own = await DbSession.checkout(pool(c), { connectMs: 1000, roundTripMs: 5200, timeout, idleInTransactionMs: 9000 });
    await own.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    expect(c.query.mock.calls.map(([sql]) => sql)).toEqual([
      "BEGIN; SET LOCAL idle_in_transaction_session_timeout = '6200ms'",
      "BEGIN; SET LOCAL idle_in_transaction_session_timeout = '6200ms'; SET LOCAL statement_timeout = '5000ms'",
      'SELECT 1',
      "BEGIN ISOLATION LEVEL REPEATABLE READ; SET LOCAL idle_in_transaction_session_timeout = '9000ms'",
    ]);
  });

  it('a connection not taken within connectMs fails with the connect error', async () => {
    const opening = DbSession.checkout({ connect: () => new Promise(() => undefined) }, { connectMs: 500, roundTripMs: 1000, timeout });
    jest.advanceTimersByTime(500);
    await expect(opening).rejects.toMatchObject({ message: 'connect 500' });
  });
});

/** Blocks the event loop for `ms`, as a long synchronous task or a CPU-starved host does. */
function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
}

describe('DbSession deadlines while the process itself stalls', () => {
  // Real timers, and answers that are I/O events: bytes written into a pipe (a FIFO) before the
  // stall, which the loop hears of only after it (as a server's answer that came during it).
  let dir: string;
  let reader: Socket;
  let writer: number;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'db-session-stall-'));
    const fifo = join(dir, 'answers');
    execFileSync('mkfifo', [fifo]);
    reader = new Socket({ fd: openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false });
    writer = openSync(fifo, constants.O_WRONLY);
  });
  afterAll(() => {
    closeSync(writer);
    reader.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Resolves with `value` once the loop reads the byte this writes into the pipe now. */
  const answered = <T>(value: T) =>
    new Promise<T>((resolve) => {
      reader.once('data', () => resolve(value));
      writeSync(writer, '.');
    });

  it('takes an answer that arrived while the process was stalled past the deadline, and a connection that was ready then', async () => {
    const c = client((sql) => answered({ rows: [{ sql }] }));
    const opening = DbSession.checkout({ connect: () => answered(c) }, { connectMs: 20, roundTripMs: 20, timeout });
    stall(100);
    const session = await opening;
    const answer = session.query('SELECT 1');
    stall(100);
    await expect(answer).resolves.toEqual([{ sql: 'SELECT 1' }]);
    expect({ failed: session.failed, destroyed: c.destroyed.mock.calls.length }).toEqual({ failed: false, destroyed: 0 });
  });
});

describe('dataSourcePool', () => {
  it('is the driver pool of a connected DataSource, else null', () => {
    const master = { connect: () => Promise.resolve({}) };
    expect(dataSourcePool({ isInitialized: true, driver: { master } })).toBe(master);
    expect(dataSourcePool({ isInitialized: false, driver: { master } })).toBeNull();
    expect(dataSourcePool({ isInitialized: true, driver: {} })).toBeNull();
    expect(dataSourcePool(undefined)).toBeNull();
  });
});
