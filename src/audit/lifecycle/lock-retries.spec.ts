import { isLockNotAvailable, LOCK_TRIES, lockRetryDelay, withLockRetries } from './lock-retries';

const lockError = () => Object.assign(new Error('canceling statement due to lock timeout'), { code: '55P03' });

describe('withLockRetries', () => {
  const sleeps: number[] = [];
  const sleep = (ms: number) => (sleeps.push(ms), Promise.resolve());

  beforeEach(() => (sleeps.length = 0));

  it('tries again while a lock is taken, and answers the first success', async () => {
    let calls = 0;
    const work = () => (++calls < 3 ? Promise.reject(lockError()) : Promise.resolve('made'));
    await expect(withLockRetries(work, { sleep })).resolves.toBe('made');
    expect({ calls, waits: sleeps.length }).toEqual({ calls: 3, waits: 2 });
  });

  it('throws the lock error after its last try', async () => {
    let calls = 0;
    const work = () => (calls++, Promise.reject(lockError()));
    await expect(withLockRetries(work, { sleep })).rejects.toMatchObject({ code: '55P03' });
    expect(calls).toBe(LOCK_TRIES);
  });

  it('throws any other error at once, and stops when told to', async () => {
    let calls = 0;
    const denied = Object.assign(new Error('permission denied'), { code: '42501' });
    await expect(withLockRetries(() => (calls++, Promise.reject(denied)), { sleep })).rejects.toBe(denied);
    await expect(withLockRetries(() => (calls++, Promise.reject(lockError())), { sleep, stop: () => true })).rejects.toMatchObject({
      code: '55P03',
    });
    expect({ calls, waits: sleeps.length }).toEqual({ calls: 2, waits: 0 });
  });

  it('recognises the lock error wrapped by TypeORM', () => {
    expect(isLockNotAvailable({ driverError: { code: '55P03' } })).toBe(true);
    expect(isLockNotAvailable({ code: '57014' })).toBe(false);
    expect(isLockNotAvailable(undefined)).toBe(false);
  });
});

describe('lockRetryDelay', () => {
  it('doubles from 50 ms up to 2 s, about 5 s in all, jittered by half either way', () => {
    const middle = Array.from({ length: LOCK_TRIES - 1 }, (_, i) => lockRetryDelay(i + 1, () => 0.5));
    expect(middle).toEqual([50, 100, 200, 400, 800, 1600, 2000]);
    expect(lockRetryDelay(3, () => 0)).toBe(100);
    expect(lockRetryDelay(3, () => 1)).toBe(300);
  });
});
