export { AuditPartitions, type PartitionStatus } from './audit-partitions';
export {
  type AuditPartitionOptions,
  PARTITION_DEFAULTS,
  resolvePartitionOptions,
  type ResolvedPartitionOptions,
} from './partition-options';
