import { type DataSource, type QueryRunner } from 'typeorm';
import { EventEmitter } from 'node:events';
import { answeredByServer, committedElsewhere, followAnswers, insideUnreportedBlock, onceAnswered } from './unreported-transaction';

const at = { id: '0193a3c0-0000-7000-8000-000000000001', occurredAt: '2026-12-04T10:00:00.000Z', table: '"audit_log"' };
/** A `pg` client double answering every query with `answer()`; counts its releases and the destructions of its socket. */
function connection(answer: () => Promise<unknown>) {
  const double = {
    destroyed: 0,
    released: [] as unknown[],
    query: answer,
    release: (error?: unknown) => double.released.push(error),
    once: () => double,
    removeListener: () => double,
    connection: { stream: { destroy: () => (double.destroyed += 1) } },
  };
  return double;
}
/** A connected DataSource whose pool hands out `client`. */
const pooled = (master: { connect: () => Promise<unknown> }) => ({ isInitialized: true, driver: { master } }) as unknown as DataSource;
const source = (client: ReturnType<typeof connection> | (() => Promise<unknown>)) => {
  const checkedOut = typeof client === 'function' ? connection(client) : client;
  return pooled({ connect: () => Promise.resolve(checkedOut) });
};
const runnerAnswering = (query: () => Promise<unknown>) => ({ query }) as unknown as QueryRunner;

describe('a transaction block TypeORM does not report', () => {
  it('is read from the status pg keeps for the connection, without a query', async () => {
    const asked: string[] = [];
    const withStatus = (status: unknown) =>
      ({
        databaseConnection: { getTransactionStatus: () => status },
        query: (text: string) => {
          asked.push(text);
          return Promise.resolve([{ open: false }]);
        },
      }) as unknown as QueryRunner;
    expect(await insideUnreportedBlock(withStatus('T'))).toBe(true);
    expect(await insideUnreportedBlock(withStatus('E'))).toBe(true);
    expect(await insideUnreportedBlock(withStatus('I'))).toBe(false);
    expect(asked).toEqual([]);
    // A status pg does not know: PostgreSQL is asked.
    expect(await insideUnreportedBlock(withStatus(null))).toBe(false);
    expect(asked).toHaveLength(1);
  });

  it('is seen, with a pg that keeps no status, by the transaction id the insert gave it, and is unknown when PostgreSQL cannot say', async () => {
    expect(await insideUnreportedBlock(runnerAnswering(() => Promise.resolve([{ open: true }])))).toBe(true);
    expect(await insideUnreportedBlock(runnerAnswering(() => Promise.resolve([{ open: false }])))).toBe(false);
    expect(await insideUnreportedBlock(runnerAnswering(() => Promise.resolve([])))).toBeUndefined();
    expect(await insideUnreportedBlock(runnerAnswering(() => Promise.reject(new Error('aborted'))))).toBeUndefined();
  });

  it('counts a row as committed only when another connection finds it, within the deadline', async () => {
    expect(
      await committedElsewhere(
        source(() => Promise.resolve({ rows: [{ '?column?': 1 }] })),
        at,
        1000,
      ),
    ).toBe(true);
    expect(
      await committedElsewhere(
        source(() => Promise.resolve({ rows: [] })),
        at,
        1000,
      ),
    ).toBe(false);
    expect(
      await committedElsewhere(
        source(() => Promise.reject(new Error('too many clients'))),
        at,
        1000,
      ),
    ).toBe(false);
    // A pool that never hands out a connection: the deadline answers.
    expect(await committedElsewhere(pooled({ connect: () => new Promise(() => undefined) }), at, 5)).toBe(false);
    // A DataSource that is not connected has no pool to ask.
    expect(await committedElsewhere({ isInitialized: false } as unknown as DataSource, at, 1000)).toBe(false);
  });

  it('gives up the connection of a look-up past its deadline: its socket destroyed, out of the pool', async () => {
    const silent = connection(() => new Promise(() => undefined));
    expect(await committedElsewhere(source(silent), at, 5)).toBe(false);
    expect({ destroyed: silent.destroyed, releasedWithError: silent.released[0] instanceof Error }).toEqual({
      destroyed: 1,
      releasedWithError: true,
    });
    // One that answers goes back to the pool as it is.
    const answering = connection(() => Promise.resolve({ rows: [] }));
    await committedElsewhere(source(answering), at, 1000);
    expect({ destroyed: answering.destroyed, released: answering.released }).toEqual({ destroyed: 0, released: [undefined] });
  });
});

describe('the status after a failed query', () => {
  /** A runner on a `pg` client double whose protocol connection emits what the server sends; `status` is what the client keeps. */
  function followed() {
    const client = { status: 'T', connection: new EventEmitter(), getTransactionStatus: () => client.status };
    const runner = { databaseConnection: client } as unknown as QueryRunner;
    followAnswers(runner);
    const seen: { status: string; statusRead: boolean }[] = [];
    const settle = (statusRead: boolean) => seen.push({ status: client.status, statusRead });
    // The server's messages, as pg handles them: its own handler first (the status read), then the follower's.
    const ready = (status: string) => {
      client.status = status;
      client.connection.emit('readyForQuery');
    };
    return { client, runner, seen, settle, ready };
  }

  it('is read at once when the ReadyForQuery after the error has come already', () => {
    const { client, runner, seen, settle, ready } = followed();
    client.connection.emit('errorMessage');
    ready('I');
    expect(onceAnswered(runner, 1000, settle)).toBeUndefined();
    expect(seen).toEqual([{ status: 'I', statusRead: true }]);
  });

  it('waits for the ReadyForQuery when the error came on its own, and settles before anything else runs', async () => {
    const { client, runner, seen, settle, ready } = followed();
    client.connection.emit('errorMessage');
    const waited = onceAnswered(runner, 1000, settle);
    expect(waited).toBeInstanceOf(Promise);
    expect(seen).toEqual([]);
    ready('I');
    // Settled inside the message's handling, with the status it brought.
    expect(seen).toEqual([{ status: 'I', statusRead: true }]);
    await waited;
  });

  it('is taken as not known when the ReadyForQuery does not come within the deadline, or the connection ends', async () => {
    const silent = followed();
    silent.client.connection.emit('errorMessage');
    await onceAnswered(silent.runner, 20, silent.settle);
    expect(silent.seen).toEqual([{ status: 'T', statusRead: false }]);
    // A ReadyForQuery after the deadline settles nothing twice.
    silent.ready('I');
    expect(silent.seen).toHaveLength(1);

    const ended = followed();
    ended.client.connection.emit('errorMessage');
    const waited = onceAnswered(ended.runner, 1000, ended.settle);
    ended.client.connection.emit('end');
    await waited;
    expect(ended.seen).toEqual([{ status: 'T', statusRead: false }]);
  });

  it('is read at once on a connection that is not followed', () => {
    const seen: boolean[] = [];
    const runner = { databaseConnection: { getTransactionStatus: () => 'I' } } as unknown as QueryRunner;
    followAnswers(runner);
    expect(onceAnswered(runner, 1000, (statusRead) => seen.push(statusRead))).toBeUndefined();
    expect(seen).toEqual([true]);
  });
});

describe('an error the server answered', () => {
  it('has a severity and an SQLSTATE; one pg made itself has neither', () => {
    const fromServer = Object.assign(new Error('division by zero'), { severity: 'ERROR', code: '22012' });
    expect(
      [fromServer, new Error('Query read timeout'), new Error('Connection terminated unexpectedly'), undefined].map(answeredByServer),
    ).toEqual([true, false, false, false]);
  });
});
