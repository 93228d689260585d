import { AuditSealerBusyError } from '../audit.errors';
import { type SealerLockHolder } from './sealer-lock-holder';

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
 * Watches the sessions the sealer's attempts find holding its lock ('busy': another instance
 * seals, or a retention run holds it). It measures one holder, never a run of them: the age of
 * the holder's transaction by the database's clock (`pg_stat_activity.xact_start`), or, where this
 * role may not read that, the time since this sealer first found that same transaction
 * (`pg_locks`: pid and virtual transaction) holding it. Another instance's brief seals, one after
 * another, are each a new holder. One holder past `limitMs` (a session that never ends, such as a
 * client cut off inside its transaction on a server without `idle_in_transaction_session_timeout`)
 * would stop sealing silently, so each attempt that finds it is reported as failed
 * ({@link AuditSealerBusyError}).
 *
 * @example
 * const watch = new SealerBusyWatch(busyLimitMs(52_000));
 * const error = watch.observe(busy ? await sealerLockHolder(query) : null); // an AuditSealerBusyError once one holder passes 10 minutes, else null
 */
export class SealerBusyWatch {
  private watched: { key: string; since: number } | null = null;

  constructor(
    private readonly limitMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Told who held the lock when an attempt found it taken (null: the lock was free); the error to report when that holder has held it past the limit. */
  observe(holder: SealerLockHolder | null): AuditSealerBusyError | null {
    if (!holder) {
      this.watched = null;
      return null;
    }
    const now = this.now();
    const key = `${holder.pid}/${holder.transaction}`;
    if (this.watched?.key !== key) this.watched = { key, since: now };
    const heldMs = holder.heldMs ?? now - this.watched.since;
    return heldMs > this.limitMs ? AuditSealerBusyError.since(heldMs, holder.pid) : null;
  }
}
