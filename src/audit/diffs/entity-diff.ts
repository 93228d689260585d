import { type EntityMetadata, type ObjectLiteral } from 'typeorm';
import { type ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import { type AuditedEntityRule } from './audited-entities';
import { type EntityChange, type EntityChangeOp, UNKNOWN_BEFORE } from './entity-change';

/** The parts of a TypeORM subscriber event a diff is made of. */
export interface ChangeSource {
  metadata: EntityMetadata;
  /** The entity (or, by criteria, the values set). */
  entity?: ObjectLiteral;
  /** The row as TypeORM loaded it before the change; absent by criteria. */
  databaseEntity?: ObjectLiteral;
  /** Columns `save()` found changed. */
  updatedColumns?: readonly ColumnMetadata[];
  /** The removed row's id map (`remove()` clears the id on the entity itself). */
  entityId?: unknown;
}

/**
 * The change an event describes, or undefined when nothing audited changed (only excluded
 * columns, say). With no `databaseEntity`, the prior state is unknown and said so.
 *
 * @example
 * entityChange('update', rule, { metadata, entity: nda, databaseEntity: loaded, updatedColumns });
 * // { type: 'NDA', id: '…', op: 'update', fields: { title: ['Old', 'New'] } }
 */
export function entityChange(op: EntityChangeOp, rule: AuditedEntityRule, source: ChangeSource): EntityChange | undefined {
  const { metadata, entity, databaseEntity } = source;
  const columns = metadata.columns.filter((column) => !rule.exclude.has(column.propertyPath) && !rule.exclude.has(column.databaseName));
  if (op === 'insert') {
    if (!entity) return undefined;
    // Only save() names the row it inserted; insert()/upsert() may have met a conflict and updated or skipped it.
    if (source.entityId === undefined) return unknownBefore(op, rule, metadata, entity, idOf(metadata, entity));
    return { type: rule.type, id: idOf(metadata, entity), op, fields: pairs(columns, undefined, entity) };
  }
  if (!databaseEntity) return unknownBefore(op, rule, metadata, entity, null);
  const id = idOf(metadata, databaseEntity) ?? idOf(metadata, source.entityId);
  if (op === 'remove') return { type: rule.type, id, op, fields: pairs(columns, databaseEntity, undefined) };
  const changed =
    op === 'update'
      ? (source.updatedColumns ?? []).filter((column) => columns.includes(column))
      : columns.filter((column) => column === metadata.deleteDateColumn);
  if (changed.length === 0) return undefined;
  return { type: rule.type, id, op, fields: pairs(changed, databaseEntity, entity) };
}

/** By criteria or through a query builder: the values written (none for a delete), and no claim about what was there. */
function unknownBefore(
  op: EntityChangeOp,
  rule: AuditedEntityRule,
  metadata: EntityMetadata,
  values: ObjectLiteral | undefined,
  id: EntityChange['id'],
): EntityChange {
  const change: EntityChange = { type: rule.type, id, op, before: UNKNOWN_BEFORE };
  if ((op !== 'update' && op !== 'insert') || !values) return change;
  const after: Record<string, unknown> = {};
  for (const key of Object.keys(values)) {
    const column = metadata.findColumnWithPropertyPath(key);
    if (rule.exclude.has(key) || (column && rule.exclude.has(column.databaseName))) continue;
    after[key] = values[key];
  }
  return Object.keys(after).length > 0 ? { ...change, after } : change;
}

function pairs(columns: readonly ColumnMetadata[], before: ObjectLiteral | undefined, after: ObjectLiteral | undefined) {
  const fields: Record<string, [unknown, unknown]> = {};
  for (const column of columns) {
    const old = before ? column.getEntityValue(before) : null;
    const now = after ? column.getEntityValue(after) : null;
    if ((old === undefined || old === null) && (now === undefined || now === null)) continue;
    fields[column.propertyPath] = [old ?? null, now ?? null];
  }
  return fields;
}

/** One primary column: its value; several: an object of them; none known: null. */
function idOf(metadata: EntityMetadata, source: unknown): EntityChange['id'] {
  if (source === null || typeof source !== 'object') return null;
  const primaries = metadata.primaryColumns;
  if (primaries.length === 1) {
    const value = primaries[0].getEntityValue(source as ObjectLiteral) as unknown;
    return typeof value === 'string' || typeof value === 'number' ? value : value == null ? null : String(value);
  }
  const id: Record<string, unknown> = {};
  for (const column of primaries) id[column.propertyPath] = column.getEntityValue(source as ObjectLiteral);
  return Object.values(id).every((value) => value === undefined) ? null : id;
}
