export {
  AuditRepositoryDouble,
  type AuditRepositoryBehaviour,
  type AuditRowSink,
  failingAuditRepository,
  flakyAuditRepository,
  hangingAuditRepository,
} from './audit-repository-double';
export { type AuditStatusSource, waitForAuditState } from './wait-for-audit-state';
