import { createSecretKey, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { AuditEntryNormalizer } from '../audit-entry';
import { type DbClient } from '../db-session';
import { eraseWithDeadlines, ErasuresUnderWay } from './bounded-erasure';

/** A `pg` client double answering each statement as `answer` says. */
function client(answer: (sql: string) => Promise<unknown>) {
  const emitter = new EventEmitter();
  const double = Object.assign(emitter, {
    query: jest.fn((sql: string) => answer(sql)),
    release: jest.fn<void, [Error?]>(),
    destroyed: jest.fn(),
  });
  return Object.assign(double, { connection: { stream: { destroy: double.destroyed } } }) as typeof double & DbClient;
}

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const context = {
  table: '"public"."audit_log"',
  normalize: (entry: Parameters<AuditEntryNormalizer['normalize']>[0]) => normalizer.normalize(entry).record,
  key: createSecretKey(randomBytes(32)),
  userIdPseudonym: null,
};
const rows = { rows: [{ id: '1', occurred_at: new Date(0), state: 'erased' }] };
const never = () => new Promise(() => undefined);

describe('eraseWithDeadlines', () => {
  // Real immediates: a deadline's verdict waits one turn of the loop (stall-tolerant-deadline.ts).
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate'] }));
  afterEach(() => jest.useRealTimers());

  it('a COMMIT never answered says the outcome is unknown and names the erasure to look for', async () => {
    const c = client((sql) => (sql === 'COMMIT' ? never() : Promise.resolve(rows)));
    const erasing = eraseWithDeadlines({ connect: () => Promise.resolve(c) }, 200, context, { userId: 'u-1' }).catch((e: Error) => e);
    await jest.advanceTimersByTimeAsync(5200);
    await expect(erasing).resolves.toMatchObject({
      code: 'AUDIT_DB_TIMEOUT',
      step: 'commit',
      message: expect.stringMatching(/may or may not have committed.*entity id [0-9a-f-]{36}/),
    });
    expect(c.destroyed).toHaveBeenCalled();
  });

  it('a statement before the COMMIT never answered says nothing was erased, and sends no COMMIT', async () => {
    const c = client((sql) => (sql.startsWith('SELECT id') ? never() : Promise.resolve(rows)));
    const erasing = eraseWithDeadlines({ connect: () => Promise.resolve(c) }, 200, context, { userId: 'u-1' }).catch((e: Error) => e);
    await jest.advanceTimersByTimeAsync(5200);
    await expect(erasing).resolves.toMatchObject({
      code: 'AUDIT_DB_TIMEOUT',
      step: 'query',
      message: expect.stringContaining('nothing was erased'),
    });
    expect(c.query.mock.calls.map(([sql]) => sql)).not.toContain('COMMIT');
  });

  it('a COMMIT the server refuses is that refusal, and the transaction is rolled back', async () => {
    const refused = Object.assign(new Error('could not serialize access'), { severity: 'ERROR', code: '40001' });
    const c = client((sql) => (sql === 'COMMIT' ? Promise.reject(refused) : Promise.resolve(rows)));
    await expect(eraseWithDeadlines({ connect: () => Promise.resolve(c) }, 200, context, { userId: 'u-1' })).rejects.toBe(refused);
    expect(c.query.mock.calls.map(([sql]) => sql).at(-1)).toBe('ROLLBACK');
    expect(c.release).toHaveBeenCalledWith(undefined);
  });
});

describe('ErasuresUnderWay', () => {
  it('gives an erasure waiting on the database up at shutdown, after `ms`: its caller learns nothing was erased', async () => {
    const erasures = new ErasuresUnderWay();
    const c = client((sql) => (sql.startsWith('SELECT id') ? never() : Promise.resolve(rows)));
    const erasing = erasures.run((track) =>
      eraseWithDeadlines({ connect: () => Promise.resolve(c) }, 2000, context, { userId: 'u-1' }, track),
    );
    const outcome = erasing.catch((error: Error & { step?: string }) => error);
    await new Promise((resolve) => setImmediate(resolve));
    await erasures.giveUp(20);
    expect(await outcome).toMatchObject({
      code: 'AUDIT_DB_TIMEOUT',
      step: 'shutdown',
      message: expect.stringContaining('nothing was erased'),
    });
  });

  it('returns at once when no erasure is under way', async () => {
    await expect(new ErasuresUnderWay().giveUp(60_000)).resolves.toBeUndefined();
  });
});
