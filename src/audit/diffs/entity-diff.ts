import { type EntityMetadata, type ObjectLiteral } from 'typeorm';
import { type ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import { type RelationMetadata } from 'typeorm/metadata/RelationMetadata';
import { REDACTED } from '../redaction';
import { type AuditedEntityRule } from './audited-entities';
import { sameValue, sameWithin } from './diff-values';
import { type EntityChange, type EntityChangeOp, UNKNOWN_BEFORE } from './entity-change';
import { type DiffField, diffFields, hiddenKey, isExcludedColumn } from './entity-fields';
import { MAX_NODES, type ShownValue, shownValue, shownValueOf } from './shown-value';
import { canonicalUuid } from './stored-form';
import { type WrittenOwners } from './written-owners';

/** The parts of a TypeORM subscriber event a diff is made of. */
export interface ChangeSource {
  metadata: EntityMetadata;
  /** The entity (or, by criteria, the values set). */
  entity?: ObjectLiteral;
  /** The row as TypeORM loaded it before the change; absent by criteria. */
  databaseEntity?: ObjectLiteral;
  /** Columns `save()` found changed. */
  updatedColumns?: readonly ColumnMetadata[];
  /** Relations (many-to-one, owning one-to-one) `save()` found changed. */
  updatedRelations?: readonly RelationMetadata[];
  /** The removed row's id map (`remove()` clears the id on the entity itself). */
  entityId?: unknown;
  /** Owners TypeORM wrote through the owner's list that the entity does not hold (`written-owners.ts`). */
  owners?: WrittenOwners;
}

type Fields = NonNullable<EntityChange['fields']>;

/**
 * The change an event describes, or undefined when nothing audited changed (only excluded
 * columns, or values written equal to those loaded). With no `databaseEntity`, the prior state
 * is unknown and said so. Redacted by name only (`isRedacted` on property paths, column names and
 * the names of the keys an id is made of); the values themselves are never looked into here.
 *
 * @example
 * entityChange('update', rule, { metadata, entity: nda, databaseEntity: loaded, updatedColumns }, isRedacted);
 * // { type: 'NDA', id: '…', op: 'update', fields: { title: ['Old', 'New'] } }
 */
export function entityChange(
  op: EntityChangeOp,
  rule: AuditedEntityRule,
  source: ChangeSource,
  isRedacted: (name: string) => boolean,
): EntityChange | undefined {
  const { metadata, entity, databaseEntity } = source;
  const fields = diffFields(metadata, rule, isRedacted);
  const seen = (field: DiffField, value: unknown) => shownValue(value, field.path, rule.exclude);
  // Hidden key columns of a relation's id are replaced in what is written, never in what is compared.
  const show = (field: DiffField, value: unknown) => seen(field, field.conceal ? field.conceal(value) : value);
  if (op === 'insert') {
    if (!entity) return undefined;
    const id = idOf(metadata, rule, entity, isRedacted);
    // Only save() names the row it inserted; insert()/upsert() may have met a conflict and updated or skipped it.
    if (source.entityId === undefined) return unknownBefore(op, rule, source.metadata, fields, show, entity, id);
    const out: Fields = {};
    for (const field of fields) {
      const now = field.read(entity) ?? writtenOwner(field, source.owners);
      if (now !== undefined && now !== null) out[field.path] = field.secret ? REDACTED : [null, show(field, now)];
    }
    return { type: rule.type, id, op, fields: out };
  }
  if (!databaseEntity) return unknownBefore(op, rule, metadata, fields, show, entity, null);
  const id = idOf(metadata, rule, databaseEntity, isRedacted) ?? idOf(metadata, rule, source.entityId, isRedacted);
  const out: Fields = {};
  let listed = 0;
  const { owners } = source;
  for (const field of changedFields(op, fields, source)) {
    // A value TypeORM did not load is unknown, never null; a value written as it was is no change.
    const owner = field.relation && owners?.written.has(field.relation) ? field.relation : undefined;
    const loaded = field.read(databaseEntity);
    const before = loaded === undefined && owner && owners?.before.has(owner) ? owners.before.get(owner) : loaded;
    const after = owner ? owners?.written.get(owner) : op === 'remove' || !entity ? null : field.read(entity);
    if (before === null && after === null) continue;
    const shown = (value: unknown, as: typeof show) => (value === undefined ? UNKNOWN_BEFORE : as(field, value));
    const was = viewed(field, before, rule);
    const now = viewed(field, after, rule);
    const pair: [unknown, unknown] = [was.value, now.value];
    if (before !== undefined && after !== undefined && typeof after !== 'function' && unchanged(field, [before, after], [was, now]))
      continue;
    out[field.path] = field.secret ? REDACTED : field.conceal ? [shown(before, show), shown(after, show)] : pair;
    listed += 1;
  }
  // A soft removal or recovery whose delete date is excluded is listed by its op alone: the op is the change.
  if (listed === 0 && op !== 'remove' && !(hidesDeleteDate(op, fields, source) && deleteDateMoved(source))) return undefined;
  return { type: rule.type, id, op, fields: out };
}

/** For a soft removal or recovery: true when the entity's rule leaves its delete date column out of the diff. */
function hidesDeleteDate(op: EntityChangeOp, fields: readonly DiffField[], source: ChangeSource): boolean {
  const column = source.metadata.deleteDateColumn;
  if ((op !== 'soft-remove' && op !== 'recover') || !column) return false;
  return !fields.some((field) => field.columns.includes(column));
}

/** True unless the delete date column is known to hold what it held: set on both sides to one instant, or unset on both. */
function deleteDateMoved({ metadata, entity, databaseEntity }: ChangeSource): boolean {
  const column = metadata.deleteDateColumn;
  if (!column || !entity || !databaseEntity) return true;
  const before = column.getEntityValue(databaseEntity) as unknown;
  const after = column.getEntityValue(entity) as unknown;
  if (before === undefined || after === undefined) return true;
  if ((before === null) !== (after === null)) return true;
  return before !== null && !sameValue(before, after);
}

/** Objects and arrays compared, at most, in two values too large to be shown whole: the work stays bounded for any value. */
const COMPARED_PAIRS = 4 * MAX_NODES;

/** A value as the diff shows it ({@link shownValueOf}); one TypeORM did not load is `'unknown'`. */
function viewed(field: DiffField, value: unknown, rule: AuditedEntityRule): ShownValue & { below: string[][] } {
  return value === undefined ? { value: UNKNOWN_BEFORE, cut: false, below: [] } : shownValueOf(value, field.path, rule.exclude);
}

/**
 * True when `field` was written with the value it had: the same as a diff shows them, or alike as
 * its column stores them (stored-form.ts: `12.5` where `'12.50'` was loaded, a `uuid` in
 * capitals; values not cut only). Values cut where they were shown (past 2^20 objects and arrays, each further one is
 * `[Truncated]` on both sides) are compared as they are, within {@link COMPARED_PAIRS}: the
 * property is listed unless they are known to be the same, so a change past the cut is never dropped.
 */
function unchanged(
  field: DiffField,
  [before, after]: readonly [unknown, unknown],
  [was, now]: readonly [ShownValue & { below: string[][] }, ShownValue & { below: string[][] }],
): boolean {
  if (was.cut || now.cut) return sameWithin(before, after, was.cut ? was.below : now.below, COMPARED_PAIRS) === true;
  return sameValue(was.value, now.value) || field.storedAlike?.(before, after) === true;
}

/** The fields an event changed: all of a removed row, those `save()` found changed, or the delete date. */
function changedFields(op: EntityChangeOp, fields: readonly DiffField[], source: ChangeSource): DiffField[] {
  if (op === 'remove') return [...fields];
  if (op !== 'update') return fields.filter((field) => field.columns.some((column) => column === source.metadata.deleteDateColumn));
  const columns = source.updatedColumns ?? [];
  const relations = source.updatedRelations ?? [];
  const owners = source.owners?.written;
  const changed: DiffField[] = [];
  for (const field of fields) {
    if (field.relation ? relations.includes(field.relation) || owners?.has(field.relation) : columns.includes(field.columns[0]))
      changed.push(field);
  }
  return changed;
}

/** The owner TypeORM wrote for `field`'s relation, which the entity does not hold; undefined when none is known. */
function writtenOwner(field: DiffField, owners: WrittenOwners | undefined): unknown {
  return field.relation && owners?.written.get(field.relation);
}

/**
 * By criteria or through a query builder: the values written (none for a delete), and no claim
 * about what was there; undefined for an update that set excluded properties only.
 */
function unknownBefore(
  op: EntityChangeOp,
  rule: AuditedEntityRule,
  metadata: EntityMetadata,
  fields: readonly DiffField[],
  show: (field: DiffField, value: unknown) => unknown,
  values: ObjectLiteral | undefined,
  id: EntityChange['id'],
): EntityChange | undefined {
  const change: EntityChange = { type: rule.type, id, op, before: UNKNOWN_BEFORE };
  if ((op !== 'update' && op !== 'insert') || !values) return change;
  const after: Record<string, unknown> = {};
  for (const field of fields) {
    const value = field.read(values);
    if (value !== undefined) after[field.path] = field.secret ? REDACTED : show(field, value);
  }
  if (Object.keys(after).length > 0) return { ...change, after };
  // An update that set excluded properties only is not listed, as a save() of them is not.
  return op === 'update' && setsExcluded(metadata, rule, fields, values) ? undefined : change;
}

/** True when `values` set a property the rule excludes: a column, or a relation left out of `fields`. */
function setsExcluded(metadata: EntityMetadata, rule: AuditedEntityRule, fields: readonly DiffField[], values: ObjectLiteral): boolean {
  if (rule.exclude.size === 0) return false;
  for (const column of metadata.columns) {
    if (!column.isVirtual && column.getEntityValue(values) !== undefined && isExcludedColumn(column, rule.exclude)) return true;
  }
  return metadata.relationsWithJoinColumns.some(
    (relation) => relation.getEntityValue(values) !== undefined && !fields.some((field) => field.relation === relation),
  );
}

/**
 * One primary column: its value; several: an object of them; none known: null. A `uuid` key is
 * written as the column stores it, in lower case, whatever case the entity holds. A key column the
 * rule excludes (or that refers to a key its entity's rule excludes) is `[EXCLUDED]`, one whose
 * name is redacted (`token`, `apiKey`) `[REDACTED]`, alone or within the object. A key value is
 * shown as a field's value is ({@link shownValue}): binary data as its length and SHA-256, never its bytes.
 */
function idOf(
  metadata: EntityMetadata,
  rule: AuditedEntityRule,
  source: unknown,
  isRedacted: (name: string) => boolean,
): EntityChange['id'] {
  if (source === null || typeof source !== 'object') return null;
  const primaries = metadata.primaryColumns;
  const valueOf = (column: ColumnMetadata): unknown => {
    const value = column.getEntityValue(source as ObjectLiteral) as unknown;
    if (value === undefined || value === null) return value;
    const hidden = hiddenKey(column, rule, isRedacted);
    if (hidden !== undefined) return hidden;
    // A uuid key as the column stores it (lower case): history and erasure find the entity by that id.
    if (typeof value === 'string' && column.type === 'uuid' && !column.transformer) return canonicalUuid(value) ?? value;
    return shownValue(value, column.propertyPath, rule.exclude);
  };
  if (primaries.length === 1) {
    const value = valueOf(primaries[0]);
    return typeof value === 'string' || typeof value === 'number' ? value : value == null ? null : String(value);
  }
  const id: Record<string, unknown> = {};
  for (const column of primaries) id[column.propertyPath] = valueOf(column);
  return Object.values(id).every((value) => value === undefined) ? null : id;
}
