export { AUDIT_EVENTS, type AuditEventLine, type AuditEventName } from './audit-event';
export {
  AuditReporter,
  type ChainBrokenReport,
  type DropReport,
  type ForgedRowsReport,
  type QuarantineReport,
  type RecoveryReport,
  type SealFailureReport,
  type WriteFailureReport,
} from './audit-reporter';
export { ConsoleSink, formatEventLine, formatEventLines } from './console.sink';
export { type EntryPartFields, EntryParts, MAX_LINE_BYTES } from './line-parts';
export { AuditDbWriteError, SentryReporter } from './sentry.reporter';
export { stderrBacklog, stderrLinesTaken, writeStderrBehind, writeStderrLine } from './stderr-line';
