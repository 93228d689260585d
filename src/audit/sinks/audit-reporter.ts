import { type SanitizedDbError } from '../db-error';

/**
 * Who and what a failed write was about; never the `changes` payload.
 *
 * @example
 * const reporter: Partial<AuditReporter> = { writeFailed: (report: WriteFailureReport) => console.log(report.attempt, report.error.code) };
 */
export interface WriteFailureReport {
  error: SanitizedDbError;
  /** `write` (the batching writer), `probe` (half-open try), `flush` (recovery flush) or `connect` (first connection). */
  attempt: 'write' | 'probe' | 'flush' | 'connect';
  /** The first entry's action; null for a connection attempt with no entry. */
  action: string | null;
  /** The first entry's actor id; always null with the `privacy` option (docs/PRIVACY.md, "What erasure keeps"). */
  userId: string | null;
  entityType: string | null;
  entityId: string | null;
  entries: number;
  buffered: number;
}

/**
 * Totals of one outage, reported when the buffer has been flushed.
 *
 * @example
 * const reporter: Partial<AuditReporter> = { recovered: (report: RecoveryReport) => console.log(`down ${report.downForMs} ms, ${report.flushed} flushed`) };
 */
export interface RecoveryReport {
  flushed: number;
  failedAttempts: number;
  dropped: number;
  downForMs: number;
}

/**
 * Entries that left the module without reaching the table (spool full or failing, shutdown without spool).
 *
 * @example
 * const reporter: Partial<AuditReporter> = { entriesDropped: (report: DropReport) => console.log(report.count, report.reason) };
 */
export interface DropReport {
  count: number;
  reason: string;
  action: string;
}

/**
 * Entries the database refused for their content (one `put` of the quarantine): who and what the
 * first was about, never their `changes` or `metadata`.
 *
 * @example
 * const reporter: Partial<AuditReporter> = { entriesQuarantined: (report: QuarantineReport) => console.log(report.count, report.file) };
 */
export interface QuarantineReport {
  count: number;
  /** The first entry's context. */
  auditId: string;
  action: string;
  entityType: string | null;
  /** The first entry's sanitized error. */
  error: SanitizedDbError;
  /** The quarantine file the entries were fsynced to; null when only their stderr lines hold them. */
  file: string | null;
}

/**
 * A failed sealing attempt (integrity on): the sanitized error and how many failed in a row.
 *
 * @example
 * const reporter: Partial<AuditReporter> = { sealingFailed: (report: SealFailureReport) => console.log(report.consecutiveFailures) };
 */
export interface SealFailureReport {
  error: SanitizedDbError;
  consecutiveFailures: number;
  /** When a seal was last committed by this process, ISO 8601; null before the first. */
  lastSealedAt: string | null;
}

/**
 * The seals in the database no longer continue the newest one the sealer made or saw (integrity on): it seals nothing more.
 *
 * @example
 * const reporter: Partial<AuditReporter> = { chainBroken: (report: ChainBrokenReport) => console.log(report.rememberedSeq, report.foundSeq) };
 */
export interface ChainBrokenReport {
  trail: string;
  rememberedSeq: number;
  rememberedHash: string;
  /** The newest seal in the database (0: none). */
  foundSeq: number;
  foundHash: string | null;
  detail: string;
  memoryFile: string | null;
  /** Set when the newest seal could not be authenticated: `AUDIT_SEAL_UNTRUSTED` or `AUDIT_TX_BEHIND_CHAIN`. */
  code?: string;
}

/**
 * Rows the sealer refused to seal because their entry codes fail (integrity with entry keys).
 *
 * @example
 * const report: ForgedRowsReport = forged;
 * console.log(`${report.count} forged rows in seal ${report.seal}`);
 */
export interface ForgedRowsReport {
  trail: string;
  /** The seal whose range holds them. */
  seal: number;
  count: number;
  /** The first of them (at most 20): id, transaction, reason, and what each claims. */
  rows: {
    id: string;
    tx: string | null;
    reason: string;
    action: string | null;
    entityType: string | null;
    entityId: string | null;
    /** The actor id the row claims; always null with the `privacy` option (docs/PRIVACY.md, "What erasure keeps"). */
    userId: string | null;
  }[];
}

/**
 * Injection token and interface of the alerting sink. The default reports to Sentry through
 * `@sentry/nestjs` (a no-op until `Sentry.init()` has run).
 *
 * @example
 * const pagerReporter: AuditReporter = {
 *   writeFailed: (report) => pager.send(report),
 *   recovered: () => {},
 *   entriesDropped: (report) => pager.send(report),
 *   entriesQuarantined: (report) => pager.send(report),
 * };
 * const provider = { provide: AuditReporter, useValue: pagerReporter };
 */
export const AuditReporter = Symbol('AUDIT:REPORTER');
export interface AuditReporter {
  writeFailed(report: WriteFailureReport): void;
  recovered(report: RecoveryReport): void;
  entriesDropped(report: DropReport): void;
  entriesQuarantined(report: QuarantineReport): void;
  /** A sealing attempt failed (optional: reporters written before integrity need not have it). */
  sealingFailed?(report: SealFailureReport): void;
  /** The seal chain was cut (optional, as `sealingFailed`). */
  chainBroken?(report: ChainBrokenReport): void;
  /** The sealer found forged rows and left them out of a seal (optional, as `sealingFailed`). */
  forgedRows?(report: ForgedRowsReport): void;
}
