import { type EntityMetadata, type ObjectLiteral } from 'typeorm';
import { type ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import { type EntityChangeOp } from './entity-change';

/** The actions by which PostgreSQL itself writes the rows that refer to a deleted or changed row. */
const WRITING_ACTIONS: ReadonlySet<string> = new Set(['CASCADE', 'SET NULL', 'SET DEFAULT']);

/** The foreign keys of audited entities that the database follows on its own, by the entity they refer to. */
export interface DatabaseCascades {
  /** Per referenced entity's target: how many audited tables a delete of one of its rows may write. */
  onDelete: Map<unknown, number>;
  /** Per referenced entity's target: the referenced columns whose change may write an audited table, one entry per key. */
  onUpdate: Map<unknown, ColumnMetadata[][]>;
}

/**
 * The foreign keys TypeORM declares on audited entities (`onDelete` / `onUpdate` of a
 * many-to-one or owning one-to-one relation) whose action writes the audited table itself:
 * `CASCADE`, `SET NULL`, `SET DEFAULT`. `NO ACTION` and `RESTRICT` write nothing (the statement fails).
 *
 * @example
 * const cascades = databaseCascades(dataSource.entityMetadatas, (metadata) => rules.has(metadata.target));
 * cascades.onDelete.get(Customer); // 2: contracts deleted, tickets' customer set null
 */
export function databaseCascades(
  metadatas: readonly EntityMetadata[],
  isAudited: (metadata: EntityMetadata) => boolean,
  into: DatabaseCascades = { onDelete: new Map(), onUpdate: new Map() },
): DatabaseCascades {
  for (const metadata of metadatas) {
    if (!isAudited(metadata)) continue;
    for (const key of metadata.foreignKeys) {
      const target = key.referencedEntityMetadata.target;
      if (key.onDelete !== undefined && WRITING_ACTIONS.has(key.onDelete)) into.onDelete.set(target, (into.onDelete.get(target) ?? 0) + 1);
      if (key.onUpdate !== undefined && WRITING_ACTIONS.has(key.onUpdate))
        into.onUpdate.set(target, [...(into.onUpdate.get(target) ?? []), key.referencedColumns]);
    }
  }
  return into;
}

/**
 * How many foreign keys of audited entities a TypeORM write of `metadata`'s rows sets going in
 * the database: each key counts 1 per delete event (a `remove()` of one row, a `delete()` by
 * criteria), and 1 per update event that writes a column it refers to, whether or not a row
 * referred to the row written (the database does not say).
 *
 * @example
 * cascadedWrites(cascades, 'remove', customerMetadata, {}); // 2
 */
export function cascadedWrites(
  cascades: DatabaseCascades,
  op: EntityChangeOp,
  metadata: EntityMetadata,
  written: { entity?: ObjectLiteral; databaseEntity?: ObjectLiteral; updatedColumns?: readonly ColumnMetadata[] },
): number {
  if (op === 'remove') return cascades.onDelete.get(metadata.target) ?? 0;
  if (op !== 'update') return 0;
  const keys = cascades.onUpdate.get(metadata.target);
  if (!keys) return 0;
  // By save(): the columns it found changed; by criteria: the values set.
  const writes = (column: ColumnMetadata): boolean =>
    written.databaseEntity
      ? (written.updatedColumns ?? []).includes(column)
      : written.entity !== undefined && column.getEntityValue(written.entity) !== undefined;
  return keys.filter((columns) => columns.some(writes)).length;
}
