import { type EntityMetadata, type ObjectLiteral, type QueryRunner } from 'typeorm';
import { type ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import { type ForeignKeyMetadata } from 'typeorm/metadata/ForeignKeyMetadata';
import { type RelationMetadata } from 'typeorm/metadata/RelationMetadata';
import { type EntityChangeOp } from './entity-change';
import { upsertOverwrites } from './upsert-statement';

/** The actions by which PostgreSQL itself writes the rows that refer to a deleted or changed row. */
const WRITING_ACTIONS: ReadonlySet<string> = new Set(['CASCADE', 'SET NULL', 'SET DEFAULT']);

/** A column whose change sets going foreign keys' actions, with the keys of audited tables that may write along the chain. */
export interface CascadingColumn {
  /** The column as the entity's metadata holds it (its values are read from what an update sets). */
  column: ColumnMetadata;
  keys: ReadonlySet<ForeignKeyMetadata>;
}

/** The foreign keys the database follows on its own that may write audited tables, by the entity whose write sets them going. */
export interface DatabaseCascades {
  /** Per entity's metadata: how many keys of audited tables a delete of one of its rows may set going. */
  onDelete: Map<EntityMetadata, number>;
  /** Per entity's metadata: its columns whose change may set going keys of audited tables. */
  onUpdate: Map<EntityMetadata, CascadingColumn[]>;
}

/**
 * The foreign keys TypeORM declares (`onDelete` / `onUpdate` of a many-to-one or owning one-to-one
 * relation) whose action writes rows of an audited table, followed along their chain: a delete
 * sets going each key that refers to the table with `CASCADE` (its rows are deleted in turn),
 * `SET NULL` or `SET DEFAULT` (its key columns change in turn), and a change of referenced
 * columns each key that refers to them with such an `ON UPDATE` action, through tables audited or
 * not, each table and column once (a cycle ends where it started). `NO ACTION` and `RESTRICT`
 * write nothing (the statement fails). Keys and audited entities are taken by table: the classes
 * of a single-table hierarchy share theirs. Computed once for a DataSource's metadata.
 *
 * @example
 * const cascades = databaseCascades(dataSource.entityMetadatas, (metadata) => rules.has(metadata.target));
 * cascades.onDelete.get(dataSource.getMetadata(Customer)); // 2: contracts deleted, tickets' customer set null
 */
export function databaseCascades(
  metadatas: readonly EntityMetadata[],
  isAudited: (metadata: EntityMetadata) => boolean,
  into: DatabaseCascades = { onDelete: new Map(), onUpdate: new Map() },
): DatabaseCascades {
  const graph = keyGraph(metadatas, isAudited);
  const onDelete = new Map<string, number>();
  const onColumn = new Map<string, ReadonlySet<ForeignKeyMetadata>>();
  for (const metadata of metadatas) {
    const table = metadata.tablePath;
    let deleted = onDelete.get(table);
    if (deleted === undefined) onDelete.set(table, (deleted = graph.reached({ table, column: undefined }).size));
    if (deleted > 0) into.onDelete.set(metadata, deleted);
    const referred = graph.referred.get(table);
    if (!referred) continue;
    const columns: CascadingColumn[] = [];
    for (const column of metadata.columns) {
      if (!referred.has(column.databaseName)) continue;
      const state = `${table}\u0000${column.databaseName}`;
      let keys = onColumn.get(state);
      if (keys === undefined) onColumn.set(state, (keys = graph.reached({ table, column: column.databaseName })));
      if (keys.size > 0) columns.push({ column, keys });
    }
    if (columns.length > 0) into.onUpdate.set(metadata, columns);
  }
  return into;
}

/** A write the database answers with keys' actions: a delete of a table's rows, or a change of one of its columns. */
interface Written {
  table: string;
  column: string | undefined;
}

/** The writing keys by the table they refer to, and what each reaches: the keys of audited tables set going from a write. */
function keyGraph(metadatas: readonly EntityMetadata[], isAudited: (metadata: EntityMetadata) => boolean) {
  const audited = new Set(metadatas.filter(isAudited).map((metadata) => metadata.tablePath));
  const referring = new Map<string, ForeignKeyMetadata[]>();
  /** Per table, its columns that a key with a writing ON UPDATE refers to. */
  const referred = new Map<string, Set<string>>();
  const seenKeys = new Set<ForeignKeyMetadata>();
  for (const metadata of metadatas) {
    for (const key of metadata.foreignKeys) {
      if (seenKeys.has(key) || !(writes(key.onDelete) || writes(key.onUpdate))) continue;
      seenKeys.add(key);
      const table = key.referencedEntityMetadata.tablePath;
      const keys = referring.get(table);
      if (keys) keys.push(key);
      else referring.set(table, [key]);
      if (!writes(key.onUpdate)) continue;
      const columns = referred.get(table) ?? new Set<string>();
      for (const column of key.referencedColumns) columns.add(column.databaseName);
      referred.set(table, columns);
    }
  }
  const reached = (start: Written): Set<ForeignKeyMetadata> => {
    const found = new Set<ForeignKeyMetadata>();
    const seen = new Set<string>();
    const pending: Written[] = [start];
    for (let write = pending.pop(); write; write = pending.pop()) {
      const state = `${write.table}\u0000${write.column ?? ''}`;
      if (seen.has(state)) continue;
      seen.add(state);
      for (const key of referring.get(write.table) ?? []) {
        const action = write.column === undefined ? key.onDelete : key.onUpdate;
        if (!writes(action)) continue;
        const at = key.referencedColumns.findIndex((column) => column.databaseName === write.column);
        if (write.column !== undefined && at < 0) continue;
        const table = key.entityMetadata.tablePath;
        if (audited.has(table)) found.add(key);
        if (write.column === undefined && action === 'CASCADE') pending.push({ table, column: undefined });
        // ON UPDATE CASCADE copies the changed column to its own; SET NULL / SET DEFAULT change them all.
        else if (write.column !== undefined && action === 'CASCADE') pending.push({ table, column: key.columns[at].databaseName });
        else for (const column of key.columns) pending.push({ table, column: column.databaseName });
      }
    }
    return found;
  };
  return { referred, reached };
}

function writes(action: string | undefined): boolean {
  return action !== undefined && WRITING_ACTIONS.has(action);
}

/**
 * How many foreign keys of audited tables a TypeORM write of `metadata`'s rows may set going in
 * the database, along their chain: each counts 1 per delete event (a `remove()` of one row, a
 * `delete()` by criteria), and 1 per update event that writes a column the chain starts from,
 * whether or not a row referred to the row written (the database does not say). An insert counts
 * as an update of the columns its `ON CONFLICT … DO UPDATE SET` overwrites (`upsert()`, `orUpdate()`).
 *
 * @example
 * cascadedWrites(cascades, 'remove', customerMetadata, {}, queryRunner); // 2
 */
export function cascadedWrites(
  cascades: DatabaseCascades,
  op: EntityChangeOp,
  metadata: EntityMetadata,
  written: {
    entity?: ObjectLiteral;
    databaseEntity?: ObjectLiteral;
    updatedColumns?: readonly ColumnMetadata[];
    updatedRelations?: readonly RelationMetadata[];
  },
  queryRunner: QueryRunner,
): number {
  if (op === 'remove') return cascades.onDelete.get(metadata) ?? 0;
  if (op !== 'update' && op !== 'insert') return 0;
  const columns = cascades.onUpdate.get(metadata);
  if (!columns) return 0;
  const changed = op === 'insert' ? upsertOverwrites(queryRunner, metadata) : updated(written);
  const keys = new Set<ForeignKeyMetadata>();
  for (const { column, keys: reached } of columns) if (changed(column)) for (const key of reached) keys.add(key);
  return keys.size;
}

/** By save(): the columns and relations' key columns it found changed; by criteria: the values set. */
function updated(written: Parameters<typeof cascadedWrites>[3]): (column: ColumnMetadata) => boolean {
  if (!written.databaseEntity) return (column) => written.entity !== undefined && column.getEntityValue(written.entity) !== undefined;
  const names = new Set((written.updatedColumns ?? []).map((column) => column.databaseName));
  for (const relation of written.updatedRelations ?? []) for (const column of relation.joinColumns) names.add(column.databaseName);
  return (column) => names.has(column.databaseName);
}
