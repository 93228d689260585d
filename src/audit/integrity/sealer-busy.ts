import { AuditSealerBusyError } from '../audit.errors';

/** The least time another session may hold the sealer's lock before the sealer says so: a retention run's removal of a big month takes minutes. */
export const BUSY_FLOOR_MS = 10 * 60_000;

/**
 * How long the sealer's lock may be found taken before each attempt that finds it so is a failure:
 * twice the longest an attempt of this configuration may go without progress (`stallMs`), at
 * least {@link BUSY_FLOOR_MS}.
 *
 * @example
 * busyLimitMs(52_000); // 600_000
 */
export function busyLimitMs(stallMs: number): number {
  return Math.max(BUSY_FLOOR_MS, 2 * stallMs);
}

/**
 * Watches the sealer's attempts that find its lock taken ('busy': another instance seals, or a
 * retention run holds it). One such attempt says nothing; but a lock held for longer than
 * `limitMs` (a session that never ends, such as a client cut off inside its transaction on a
 * server without `idle_in_transaction_session_timeout`) would stop sealing silently, so each attempt
 * from then on is reported as failed ({@link AuditSealerBusyError}) until one finds the lock free.
 *
 * @example
 * const watch = new SealerBusyWatch(busyLimitMs(52_000));
 * const error = watch.observe(result === 'busy'); // an AuditSealerBusyError once busy for over 10 minutes, else null
 */
export class SealerBusyWatch {
  private since: number | null = null;

  constructor(
    private readonly limitMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Told whether an attempt found the lock taken; the error to report when it has been taken for longer than the limit. */
  observe(busy: boolean): AuditSealerBusyError | null {
    if (!busy) {
      this.since = null;
      return null;
    }
    const now = this.now();
    this.since ??= now;
    const heldMs = now - this.since;
    return heldMs > this.limitMs ? AuditSealerBusyError.since(heldMs) : null;
  }
}
