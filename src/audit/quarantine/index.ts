export { AuditQuarantine, QUARANTINE_DIR, type QuarantineResult } from './audit-quarantine';
export { isolateRefused, type RefusedRecord, splitBudgetMs } from './isolate-refused';
