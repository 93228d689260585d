import { type AuditRowCount } from './databases';
import { type RequestRecord } from './load';

/** One acknowledged request without exactly one row, or a row group with more than one. */
export interface EntryProblem {
  phase: string;
  action: string;
  entityId: string;
  rows: number;
  /** For a missing entry: still in a spool file (durable, not yet replayed) rather than lost. */
  inSpool?: boolean;
}

/** Requests and latency of one phase (latencies of acknowledged requests, in ms). */
export interface PhaseFigures {
  phase: string;
  sent: number;
  acknowledged: number;
  notAcknowledged: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Acknowledged requests against the rows of `audit_log`. */
export interface Accounting {
  acknowledged: number;
  /** Acknowledged requests with at least one row. */
  recorded: number;
  missing: EntryProblem[];
  /** (action, entity id) pairs with more than one row, acknowledged or not. */
  duplicated: EntryProblem[];
  /** Rows of requests the client never saw answered (in flight at a kill): allowed, counted. */
  unacknowledgedRows: number;
}

const key = (action: string, entityId: string) => `${action} ${entityId}`;

/**
 * Matches every acknowledged request to its rows by (action, entity id).
 *
 * @example
 * const { missing, duplicated } = account(load.records, await countAuditRows(auditDb), spooledKeys);
 */
export function account(records: readonly RequestRecord[], rows: readonly AuditRowCount[], spooled = new Set<string>()): Accounting {
  const counts = new Map(rows.map((r) => [key(r.action, r.entityId), r.rows]));
  const acknowledged = records.filter((r) => r.acknowledged && r.entityId !== null);
  const missing: EntryProblem[] = [];
  const phaseOf = new Map<string, string>();
  for (const r of acknowledged) {
    const k = key(r.action, r.entityId as string);
    phaseOf.set(k, r.phase);
    if (!counts.get(k))
      missing.push({ phase: r.phase, action: r.action, entityId: r.entityId as string, rows: 0, inSpool: spooled.has(k) });
  }
  const duplicated = rows
    .filter((r) => r.rows > 1)
    .map((r) => ({
      phase: phaseOf.get(key(r.action, r.entityId)) ?? 'unacknowledged',
      action: r.action,
      entityId: r.entityId,
      rows: r.rows,
    }));
  return {
    acknowledged: records.filter((r) => r.acknowledged).length,
    recorded: acknowledged.length - missing.length,
    missing,
    duplicated,
    unacknowledgedRows: rows.filter((r) => !phaseOf.has(key(r.action, r.entityId))).length,
  };
}

/**
 * The key {@link account} matches on, for entries found in spool files.
 *
 * @example
 * entryKey('nda_created', id); // 'nda_created 0193…'
 */
export function entryKey(action: string, entityId: string): string {
  return key(action, entityId);
}

/**
 * Request counts and p50/p99/max latency of acknowledged requests, per phase, in schedule order.
 *
 * @example
 * latencyByPhase(load.records, ['baseline', 'kill-db']); // [{ phase: 'baseline', p99Ms: 12.3, … }, …]
 */
export function latencyByPhase(records: readonly RequestRecord[], phases: readonly string[]): PhaseFigures[] {
  return phases.map((phase) => {
    const mine = records.filter((r) => r.phase === phase);
    const latencies = mine
      .filter((r) => r.acknowledged)
      .map((r) => r.latencyMs)
      .sort((a, b) => a - b);
    const acknowledged = latencies.length;
    return {
      phase,
      sent: mine.length,
      acknowledged,
      notAcknowledged: mine.length - acknowledged,
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
      maxMs: round(latencies[latencies.length - 1] ?? 0),
    };
  });
}

/**
 * Nearest-rank percentile of ascending `sorted` (0 when empty).
 *
 * @example
 * percentile([1, 2, 3, 4], 50); // 2
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
