export { withEntityChanges } from './attach-changes';
export { AuditedEntity, type AuditedEntityOptions } from './audited-entity.decorator';
export { type AuditDiffOptions, type EntityClass, resolveDiffOptions, type ResolvedDiffOptions } from './diff-options';
export { type EntityChange, type EntityChangeOp, type EntityChanges, UNKNOWN_BEFORE } from './entity-change';
export { EntityChangeSubscriber } from './entity-change.subscriber';
export { holdForRecord, type RecordHold } from './transaction-changes';
