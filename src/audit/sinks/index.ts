export { AUDIT_EVENTS, type AuditEventLine, type AuditEventName } from './audit-event';
export { AuditReporter, type DropReport, type QuarantineReport, type RecoveryReport, type WriteFailureReport } from './audit-reporter';
export { ConsoleSink, formatEventLine } from './console.sink';
export { AuditDbWriteError, SentryReporter } from './sentry.reporter';
