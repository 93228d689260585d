import { sealStatementMs } from './seal-store';

/** Longest pause between attempts after failures (the interval doubles per failure up to it). */
export const MAX_BACKOFF_MS = 60_000;
/** Failures after which the pause stops doubling, so that the power stays a small number. */
const MAX_DOUBLINGS = 10;
/** The least time a connection opened for the sealer may take (as the writer's), whatever `writeTimeoutMs`. */
const CONNECT_FLOOR_MS = 5000;
/** File operations of one write of the chain memory, each bounded by `writeTimeoutMs`. */
const MEMORY_OPERATIONS = 10;

/** The sealer's client-side deadlines, all derived from `writeTimeoutMs` (see docs/INTEGRITY.md). */
export interface SealerDeadlines {
  /** Longest wait for a connection: `writeTimeoutMs`, at least 5 s. */
  connectMs: number;
  /** Each statement's `statement_timeout` and `lock_timeout` on the server. */
  statementMs: number;
  /** Longest wait for one round trip: the statement's bound plus `writeTimeoutMs`. */
  roundTripMs: number;
  /** How long an attempt may go without progress: longer than any one of its bounded steps. */
  stallMs: number;
}

/**
 * The deadlines of the sealer for a `writeTimeoutMs`.
 *
 * @example
 * sealerDeadlines(2000); // { connectMs: 5000, statementMs: 30000, roundTripMs: 32000, stallMs: 52000 }
 */
export function sealerDeadlines(writeTimeoutMs: number): SealerDeadlines {
  const connectMs = Math.max(writeTimeoutMs, CONNECT_FLOOR_MS);
  const statementMs = sealStatementMs(writeTimeoutMs);
  const roundTripMs = statementMs + writeTimeoutMs;
  return { connectMs, statementMs, roundTripMs, stallMs: Math.max(connectMs, roundTripMs) + MEMORY_OPERATIONS * writeTimeoutMs };
}

/**
 * How long the sealer waits before its next attempt: `intervalMs` after a success, else the
 * interval doubled per failure in a row, at most a minute.
 *
 * @example
 * nextAttemptDelay(5000, 0); // 5000
 * nextAttemptDelay(5000, 2); // 20000
 * nextAttemptDelay(5000, 9); // 60000
 */
export function nextAttemptDelay(intervalMs: number, failures: number): number {
  if (failures <= 0) return intervalMs;
  return Math.min(MAX_BACKOFF_MS, intervalMs * 2 ** Math.min(failures, MAX_DOUBLINGS));
}

/**
 * For an attempt idle for `idleMs` (no progress since): how much longer it may stay idle before
 * it is given up, or null when it has been idle `stallMs` or more (it is given up now).
 *
 * @example
 * stallWaitMs(1000, 52_000); // 51000
 * stallWaitMs(52_000, 52_000); // null
 */
export function stallWaitMs(idleMs: number, stallMs: number): number | null {
  return idleMs < stallMs ? stallMs - idleMs : null;
}

/**
 * The health indicator's `lag`: milliseconds since the sealer last found nothing left to seal,
 * never negative (a clock set back reads as 0).
 *
 * @example
 * sealingLag(10_000, 4_000); // 6000
 */
export function sealingLag(now: number, caughtUpAt: number): number {
  return Math.max(0, now - caughtUpAt);
}
