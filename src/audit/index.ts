export { CreateAuditLog1732700000000 } from '../../migrations/1732700000000-CreateAuditLog';
export { AuditIntegrity1764300000000 } from '../../migrations/1764300000000-AuditIntegrity';
export { AuditReadIndexes1764300000001 } from '../../migrations/1764300000001-AuditReadIndexes';
export { AuditEntryAuth1764900000000 } from '../../migrations/1764900000000-AuditEntryAuth';
export { AuditMigrationsRefuseForeignTriggers1764999000000 } from '../../migrations/1764999000000-AuditMigrationsRefuseForeignTriggers';
export { AuditPartitions1765000000000 } from '../../migrations/1765000000000-AuditPartitions';
export { AuditRetention1765100000000 } from '../../migrations/1765100000000-AuditRetention';
export { AuditErasure1765200000000 } from '../../migrations/1765200000000-AuditErasure';
export { AuditRetentionChecks1765300000000 } from '../../migrations/1765300000000-AuditRetentionChecks';
export { AuditSealLinks1765400000000 } from '../../migrations/1765400000000-AuditSealLinks';
export { AuditSealTrustIndexes1765600000000 } from '../../migrations/1765600000000-AuditSealTrustIndexes';
export { AuditPartitionUpkeep1765800000000 } from '../../migrations/1765800000000-AuditPartitionUpkeep';
export { AuditRetireWithoutWaiting1765900000000 } from '../../migrations/1765900000000-AuditRetireWithoutWaiting';
export { AuditRetireByLeaf1766100000000 } from '../../migrations/1766100000000-AuditRetireByLeaf';
export { AuditUpkeepWithoutWaiting1766200000000 } from '../../migrations/1766200000000-AuditUpkeepWithoutWaiting';
export { AuditRetireInChunks1766300000000 } from '../../migrations/1766300000000-AuditRetireInChunks';
export { AuditRetireLegacy1766500000000 } from '../../migrations/1766500000000-AuditRetireLegacy';
export { AuditEntityChanges1766600000000 } from '../../migrations/1766600000000-AuditEntityChanges';
export { AuditRetireLegacyInParts1766700000000 } from '../../migrations/1766700000000-AuditRetireLegacyInParts';
export { AuditSealMonths1766800000000 } from '../../migrations/1766800000000-AuditSealMonths';
export { AuditEraseRefusesForeignTriggers1766900000000 } from '../../migrations/1766900000000-AuditEraseRefusesForeignTriggers';
export { AuditOtherEntitiesIndex1767000000000 } from '../../migrations/1767000000000-AuditOtherEntitiesIndex';
export { AuditOtherEntitiesQualified1767100000000 } from '../../migrations/1767100000000-AuditOtherEntitiesQualified';
export { AuditOtherEntityRefs1767200000000 } from '../../migrations/1767200000000-AuditOtherEntityRefs';
export { AUDIT_MIGRATIONS } from './audit-migrations';
export { AuditBuffer, type BufferedEntry } from './audit-buffer';
export { auditScope } from './audit-context';
export { DbHealthIndicator } from './audit-db.health';
export { type AuditEntry, type AuditOutcome, type AuditRecord } from './audit-entry';
export { AuditLog } from './audit-log.entity';
export {
  AUDIT_DEFAULTS,
  type AuditHttpOptions,
  type AuditModuleOptions,
  type AuditRequest,
  type ResolvedAuditOptions,
  type UserIdExtractor,
} from './audit-options';
export { AUDIT_OPTIONS } from './audit.constants';
export { DEFAULT_REDACT_KEYS } from './redaction';
export {
  AUDIT_ERROR_CODES,
  AuditConfigError,
  AuditDbTimeoutError,
  AuditErasureError,
  type AuditErrorCode,
  AuditQueryError,
  AuditReadError,
} from './audit.errors';
export { AuditInterceptor } from './audit.interceptor';
export { AuditModule } from './audit.module';
export { type AuditModuleExtras } from './audit.module-definition';
export { type AuditState, type AuditStatus, AuditService } from './audit.service';
export { type AuditStateChange } from './audit-state-history';
export { Audited, type AuditedOptions, type EntityIdSource } from './audited.decorator';
export { type SanitizedDbError } from './db-error';
export {
  type AuditDiffOptions,
  AuditedEntity,
  type AuditedEntityOptions,
  type EntityChange,
  type EntityChangeOp,
  type EntityChanges,
  EntityChangeSubscriber,
  type EntityClass,
  UNKNOWN_BEFORE,
} from './diffs';
export {
  AuditQueryService,
  type AuditExportFormat,
  type AuditExportRequest,
  type AuditPage,
  type AuditPageRequest,
  type AuditRowRead,
  type AuditSealStatus,
  type AuditSearch,
  type AuditTrailRow,
} from './query';
export {
  type Anomaly,
  ANOMALY_KINDS,
  type AnomalyKind,
  type AuditIntegrityOptions,
  AuditSealer,
  type EntryKey,
  parseEntryKeys,
  type IntegrityStatus,
  type VerifyReport,
  verifyTrail,
} from './integrity';
export {
  type AuditPartitionOptions,
  AuditPartitions,
  AuditRetention,
  type AuditRetentionOptions,
  type MonthDecision,
  type PartitionStatus,
} from './lifecycle';
export { RingBuffer } from './ring-buffer';
export {
  AUDIT_EVENTS,
  AuditReporter,
  type AuditEventLine,
  type AuditEventName,
  type ChainBrokenReport,
  type DropReport,
  type QuarantineReport,
  type RecoveryReport,
  type SealFailureReport,
  type ForgedRowsReport,
  type WriteFailureReport,
} from './sinks';
export {
  AuditSpool,
  DiskTimeoutError,
  FileSpool,
  type FileSpoolOptions,
  SPOOL_ERROR_CODES,
  type SpoolAppendResult,
  SpoolReadError,
  type SpoolRejection,
} from './spool';
