export { AuditPartitions, type PartitionStatus } from './audit-partitions';
export { AuditRetention } from './audit-retention';
export { type MonthDecision } from './retention';
export { type AuditRetentionOptions } from './retention-options';
export {
  type AuditPartitionOptions,
  PARTITION_DEFAULTS,
  resolvePartitionOptions,
  type ResolvedPartitionOptions,
} from './partition-options';
