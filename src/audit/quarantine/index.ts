export { AuditQuarantine, QUARANTINE_DIR, type QuarantineResult } from './audit-quarantine';
export { isolateRefused, type RefusedRecord } from './isolate-refused';
