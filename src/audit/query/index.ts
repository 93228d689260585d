export { AuditQueryController, auditQueryController } from './audit-query.controller';
export { AuditQueryService } from './audit-query.service';
export {
  type AuditExportFormat,
  type AuditExportRequest,
  type AuditPage,
  type AuditPageRequest,
  type AuditRowRead,
  type AuditSearch,
  type AuditTrailRow,
} from './audit-query.types';
export { type AuditSealStatus } from './audit-seal-status';
