import { type EntityMetadata, type ObjectLiteral, type QueryRunner } from 'typeorm';
import { type ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import { type ForeignKeyMetadata } from 'typeorm/metadata/ForeignKeyMetadata';
import { type RelationMetadata } from 'typeorm/metadata/RelationMetadata';
import { type EntityChangeOp } from './entity-change';
import { upsertOverwrites } from './upsert-statement';

/** The actions by which PostgreSQL itself writes the rows that refer to a deleted or changed row. */
const WRITING_ACTIONS: ReadonlySet<string> = new Set(['CASCADE', 'SET NULL', 'SET DEFAULT']);

/** A column whose change sets going foreign keys' actions, with the keys of audited tables that may write along the chain. */
interface CascadingColumn {
  /** The column as the entity's metadata holds it (its values are read from what an update sets). */
  column: ColumnMetadata;
  keys: ReadonlySet<ForeignKeyMetadata>;
}

/** What a write of an entity's rows sets going, worked out at its first write and kept. */
interface EntityCascades {
  graph: KeyGraph;
  table: string;
  /** How many keys of audited tables a delete of one of its rows may set going. */
  deleted?: number;
  /** Its columns whose change may set going keys of audited tables. */
  columns?: CascadingColumn[];
}

/** The foreign keys the database follows on its own, by the entity (its metadata) whose write sets them going. */
export type DatabaseCascades = Map<EntityMetadata, EntityCascades>;

/**
 * The foreign keys TypeORM declares (`onDelete` / `onUpdate` of a many-to-one or owning one-to-one
 * relation) whose action writes rows, noted once for a DataSource's metadata, by the entities that
 * a writing key refers to (entities no such key refers to set nothing going). Keys and audited
 * entities are taken by table: the classes of a single-table hierarchy share theirs. What a write
 * sets going is followed along the chain at the entity's first write (see {@link cascadedWrites}).
 *
 * @example
 * const cascades = databaseCascades(dataSource.entityMetadatas, (metadata) => rules.has(metadata.target));
 * cascadedWrites(cascades, 'remove', dataSource.getMetadata(Customer), {}, queryRunner); // 2: contracts deleted, tickets' customer set null
 */
export function databaseCascades(
  metadatas: readonly EntityMetadata[],
  isAudited: (metadata: EntityMetadata) => boolean,
  into: DatabaseCascades = new Map(),
): DatabaseCascades {
  const graph = keyGraph(metadatas, isAudited);
  for (const metadata of metadatas) {
    const table = metadata.tablePath;
    if (graph.referring.has(table)) into.set(metadata, { graph, table });
  }
  return into;
}

/** A write the database answers with keys' actions: a delete of a table's rows, or a change of one of its columns. */
interface Written {
  table: string;
  column: string | undefined;
}

/** A DataSource's writing keys by the table they refer to, and what a write reaches along them. */
interface KeyGraph {
  referring: ReadonlyMap<string, readonly ForeignKeyMetadata[]>;
  /** Per table, its columns that a key with a writing ON UPDATE refers to. */
  referred: ReadonlyMap<string, ReadonlySet<string>>;
  /** The keys of audited tables a write sets going. */
  reached(start: Written): ReadonlySet<ForeignKeyMetadata>;
}

function keyGraph(metadatas: readonly EntityMetadata[], isAudited: (metadata: EntityMetadata) => boolean): KeyGraph {
  const audited = new Set(metadatas.filter(isAudited).map((metadata) => metadata.tablePath));
  const referring = new Map<string, ForeignKeyMetadata[]>();
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
  // Each state (a table's delete, a column's change) once: a cycle ends where it started.
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
  return { referring, referred, reached };
}

function writes(action: string | undefined): boolean {
  return action !== undefined && WRITING_ACTIONS.has(action);
}

/**
 * How many foreign keys of audited tables a TypeORM write of `metadata`'s rows may set going in
 * the database, along their chain: a delete sets going each key that refers to the table with
 * `CASCADE` (its rows are deleted in turn), `SET NULL` or `SET DEFAULT` (its key columns change in
 * turn), a change of referenced columns each key that refers to them with such an `ON UPDATE`
 * action, through tables audited or not; `NO ACTION` and `RESTRICT` write nothing (the statement
 * fails). Each key counts 1 per delete event (a `remove()` of one row, a `delete()` by criteria),
 * and 1 per update event that writes a column the chain starts from, whether or not a row referred
 * to the row written (the database does not say). An insert counts as an update of the columns its
 * `ON CONFLICT … DO UPDATE SET` overwrites (`upsert()`, `orUpdate()`). The chain is followed at the
 * entity's first write, each table and column once, and kept.
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
  const entry = cascades.get(metadata);
  if (!entry) return 0;
  if (op === 'remove') return (entry.deleted ??= entry.graph.reached({ table: entry.table, column: undefined }).size);
  if (op !== 'update' && op !== 'insert') return 0;
  const columns = (entry.columns ??= cascadingColumns(metadata, entry));
  if (columns.length === 0) return 0;
  const changed = op === 'insert' ? upsertOverwrites(queryRunner, metadata) : updated(written);
  const keys = new Set<ForeignKeyMetadata>();
  for (const { column, keys: reached } of columns) if (changed(column)) for (const key of reached) keys.add(key);
  return keys.size;
}

/** `metadata`'s columns whose change sets going keys of audited tables, with those keys. */
function cascadingColumns(metadata: EntityMetadata, { graph, table }: EntityCascades): CascadingColumn[] {
  const referred = graph.referred.get(table);
  if (!referred) return [];
  const columns: CascadingColumn[] = [];
  for (const column of metadata.columns) {
    if (!referred.has(column.databaseName)) continue;
    const keys = graph.reached({ table, column: column.databaseName });
    if (keys.size > 0) columns.push({ column, keys });
  }
  return columns;
}

/** By save(): the columns and relations' key columns it found changed; by criteria: the values set. */
function updated(written: Parameters<typeof cascadedWrites>[3]): (column: ColumnMetadata) => boolean {
  if (!written.databaseEntity) return (column) => written.entity !== undefined && column.getEntityValue(written.entity) !== undefined;
  const names = new Set((written.updatedColumns ?? []).map((column) => column.databaseName));
  for (const relation of written.updatedRelations ?? []) for (const column of relation.joinColumns) names.add(column.databaseName);
  return (column) => names.has(column.databaseName);
}
