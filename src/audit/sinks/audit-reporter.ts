import { type SanitizedDbError } from '../db-error';

/** Who and what a failed write was about; never the `changes` payload. */
export interface WriteFailureReport {
  error: SanitizedDbError;
  /** `write` (the batching writer), `probe` (half-open try), `flush` (recovery flush) or `connect` (first connection). */
  attempt: 'write' | 'probe' | 'flush' | 'connect';
  /** The first entry's action; null for a connection attempt with no entry. */
  action: string | null;
  userId: string | null;
  entityType: string | null;
  entityId: string | null;
  entries: number;
  buffered: number;
}

/** Totals of one outage, reported when the buffer has been flushed. */
export interface RecoveryReport {
  flushed: number;
  failedAttempts: number;
  dropped: number;
  downForMs: number;
}

/** Entries that left the module without reaching the table (spool full or failing, shutdown without spool). */
export interface DropReport {
  count: number;
  reason: string;
  action: string;
}

/**
 * Injection token and interface of the alerting sink. The default reports to Sentry through
 * `@sentry/nestjs` (a no-op until `Sentry.init()` has run).
 *
 * @example
 * { provide: AuditReporter, useValue: { writeFailed: (r) => pager.send(r), recovered: () => {}, entriesDropped: (r) => pager.send(r) } }
 */
export const AuditReporter = Symbol('AUDIT:REPORTER');
export interface AuditReporter {
  writeFailed(report: WriteFailureReport): void;
  recovered(report: RecoveryReport): void;
  entriesDropped(report: DropReport): void;
}
