/** SQLSTATE lock_not_available: a function that waits at most 1 ms for its locks (`lock_timeout`) found one taken. */
export const LOCK_NOT_AVAILABLE = '55P03';

/** How many times work that found a lock taken is tried, with about 5 s of waits in all between the tries. */
export const LOCK_TRIES = 8;

/**
 * The wait before try `attempt + 1` (ms): doubling from 50 ms, at most 2 s, with jitter so that
 * instances of a fleet do not retry in step.
 *
 * @example
 * lockRetryDelay(1, () => 0.5); // 50
 */
export function lockRetryDelay(attempt: number, random: () => number = Math.random): number {
  return Math.min(2000, 25 * 2 ** attempt) * (0.5 + random());
}

/**
 * Runs `work` again while it fails with SQLSTATE 55P03 (a lock held by another session), at most
 * {@link LOCK_TRIES} times, waiting {@link lockRetryDelay} between tries; `stop()` true ends the
 * tries early (the last error is thrown). Any other error is thrown at once.
 *
 * @example
 * const rows = await withLockRetries(() => client.query('SELECT * FROM audit_log_create_partitions(3)'));
 */
export async function withLockRetries<T>(
  work: () => Promise<T>,
  options: { stop?: () => boolean; sleep?: (ms: number) => Promise<void> } = {},
): Promise<T> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref()));
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await work();
    } catch (error) {
      if (!isLockNotAvailable(error) || attempt >= LOCK_TRIES || options.stop?.()) throw error;
      await sleep(lockRetryDelay(attempt));
    }
  }
}

/**
 * Whether `error` (a driver's, or TypeORM's wrapping one) is SQLSTATE 55P03.
 *
 * @example
 * isLockNotAvailable(Object.assign(new Error('canceling statement due to lock timeout'), { code: '55P03' })); // true
 */
export function isLockNotAvailable(error: unknown): boolean {
  const source = (error ?? {}) as { code?: unknown; driverError?: { code?: unknown } };
  return (source.driverError?.code ?? source.code) === LOCK_NOT_AVAILABLE;
}
