import { type DbClient, type DbPool, DbSession } from '../db-session';

/** Stable code of a sealer's step that missed its client-side deadline. */
export const SEAL_TIMEOUT_CODE = 'AUDIT_SEAL_TIMEOUT';

/**
 * A step of a sealing attempt (taking a connection, a round trip) that did not finish within its
 * deadline: the connection it used, if any, was destroyed and never goes back to the pool.
 *
 * @example
 * new SealTimeoutError('query', 8000).message; // 'AUDIT_SEAL_TIMEOUT: the sealer's query got no answer within 8000 ms'
 */
export class SealTimeoutError extends Error {
  override readonly name = 'SealTimeoutError';
  readonly code = SEAL_TIMEOUT_CODE;

  constructor(
    readonly step: 'connect' | 'query' | 'attempt',
    readonly timeoutMs: number,
  ) {
    super(
      step === 'connect'
        ? `${SEAL_TIMEOUT_CODE}: the sealer got no connection within ${timeoutMs} ms`
        : step === 'query'
          ? `${SEAL_TIMEOUT_CODE}: the sealer's query got no answer within ${timeoutMs} ms`
          : `${SEAL_TIMEOUT_CODE}: the sealing attempt made no progress for ${timeoutMs} ms`,
    );
  }
}

/** The parts of a `pg` client the sealer uses. */
export type SealerClient = DbClient;

/** The parts of a `pg` pool the sealer uses. */
export type SealerPool = DbPool;

/** One connection of a sealing attempt or a retention run: a {@link DbSession} whose steps fail with {@link SealTimeoutError}. */
export type SealerSession = DbSession;

/**
 * One pool connection for one sealing attempt, with client-side deadlines (see
 * {@link DbSession}): taking it may last `connectMs` (a connection the pool opens for it is
 * destroyed past that), each round trip `roundTripMs`; a step past its deadline fails with
 * {@link SealTimeoutError} and its connection leaves the pool with its socket destroyed.
 *
 * @example
 * const session = await SealerSession.open(pool, 5000, 32_000);
 * try { await sealOnce(session, 'public.audit_log', options); } finally { session.release(); }
 */
export const SealerSession = {
  /** Checks a connection out of `pool` within `connectMs`; `onProgress` is told whenever a round trip settles. */
  open(pool: SealerPool, connectMs: number, roundTripMs: number, onProgress: () => void = () => undefined): Promise<SealerSession> {
    return DbSession.checkout(pool, { connectMs, roundTripMs, onProgress, timeout: (step, ms) => new SealTimeoutError(step, ms) });
  },
};
