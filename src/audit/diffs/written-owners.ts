import { type EntityMetadata, type ObjectLiteral, type QueryRunner } from 'typeorm';
import { type ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import { type RelationMetadata } from 'typeorm/metadata/RelationMetadata';
import { currentAuditContext } from '../audit-context';
import { type EntityChangeOp } from './entity-change';
import { relationKeyName } from './entity-fields';
import { readTypeormWrite, renumbered, type TypeormWrite } from './typeorm-writes';
import { unreportedBlockOpen } from './unreported-transaction';

/**
 * The owners TypeORM wrote for a row, through the owner's one-to-many (or inverse one-to-one)
 * list, that the row's entity object does not hold: by relation, each as the diff shows a relation (its id).
 */
export interface WrittenOwners {
  /** The owner written (null: none). */
  written: Map<RelationMetadata, unknown>;
  /** The owner before an update, read from the table before it (TypeORM did not load it). */
  before: Map<RelationMetadata, unknown>;
  /** Owners written that could not be read: each counts in `entitiesOmitted`. */
  unseen: number;
}

/** The parts of an entity event read here. */
export interface OwnedRow {
  metadata: EntityMetadata;
  entity?: ObjectLiteral;
  databaseEntity?: ObjectLiteral;
  updatedRelations?: readonly RelationMetadata[];
  entityId?: unknown;
}

/** An INSERT or UPDATE sent in an audit context, as answered; read only when an event asks for it. */
interface Sent {
  query: string;
  parameters: readonly unknown[];
  /** The rows it returned (`RETURNING`): an insert's generated keys, in the order of its VALUES. */
  returned: readonly ObjectLiteral[];
  /** Its reading, once read (null: not a statement in TypeORM's form). */
  read?: TypeormWrite | null;
}

interface Held {
  sent: Sent[];
  /** Some were dropped past {@link MAX_SENT}: a row not found may have been written by one of them. */
  lost: boolean;
  /** Owners read before an update, by table path, then by row key ({@link rowKey}). */
  before: Map<string, Map<string, ObjectLiteral>>;
}

/** An entity with owner relations ({@link ownerRelations}), and how TypeORM's statements on its table begin. */
interface Owned {
  metadata: EntityMetadata;
  relations: RelationMetadata[];
  /** Their join columns' names, quoted as TypeORM quotes them. */
  joinNames: string[];
  /** `UPDATE "table" SET `, and `INSERT INTO "table"` (then `(`, ` AS ` or ` DEFAULT VALUES`). */
  update: string;
  insert: string;
}

/** Statements held per runner at most, within one transaction: past it the oldest go, and a row not found is counted. */
const MAX_SENT = 4096;
/** Rows noted by {@link unloadedOwners} at most, the oldest forgotten first: a forgotten one's old owner is `'unknown'`. */
const MAX_UNLOADED = 1024;
const SAVEPOINT = 'audit_owner_before';
const heldByRunner = new WeakMap<QueryRunner, Held>();
const ownedOf = new WeakMap<EntityMetadata, Owned | null>();
/** The audited entities with owner relations on the DataSources watched, by table path: only their writes are kept. */
const ownedTables = new Map<string, Owned>();
/** Rows about to be updated whose owner TypeORM did not load: table path and {@link sortedKey}, joined. */
const unloaded = new Map<string, true>();

/**
 * The relations of an entity TypeORM may write from the other side (the owner's one-to-many or
 * inverse one-to-one list) into join columns no property of the entity holds.
 *
 * @example
 * ownerRelations(dataSource.getMetadata(Contract)).map((relation) => relation.propertyPath); // ['client']
 */
export function ownerRelations(metadata: EntityMetadata): readonly RelationMetadata[] {
  return ownedEntity(metadata)?.relations ?? [];
}

/**
 * Follows the writes of the audited entities in `audited` that have owner relations: their
 * INSERTs, and their UPDATEs that name a join column, are kept ({@link sentWrite}); no other statement is.
 *
 * @example
 * watchOwners(dataSource.entityMetadatas.filter(isAudited)); // from the subscriber's watch()
 */
export function watchOwners(audited: readonly EntityMetadata[]): void {
  for (const metadata of audited) {
    const owned = ownedEntity(metadata);
    if (owned) ownedTables.set(metadata.tablePath, owned);
  }
}

function ownedEntity(metadata: EntityMetadata): Owned | undefined {
  let owned = ownedOf.get(metadata);
  if (owned === undefined) {
    const relations = metadata.relationsWithJoinColumns.filter(
      (relation) => relation.inverseRelation !== undefined && relation.joinColumns.every((join) => join.isVirtual),
    );
    const table = relations.length === 0 ? '' : metadata.tablePath.split('.').map(quoted).join('.');
    owned =
      relations.length === 0
        ? null
        : {
            metadata,
            relations,
            joinNames: relations.flatMap((relation) => relation.joinColumns).map((join) => quoted(join.databaseName)),
            update: `UPDATE ${table} SET `,
            insert: `INSERT INTO ${table}`,
          };
    ownedOf.set(metadata, owned);
  }
  return owned ?? undefined;
}

/** The owned entity whose table `query` (an INSERT, or an UPDATE that names one of its join columns) writes, if any. */
function ownedWrite(query: string): Owned | undefined {
  if (ownedTables.size === 0) return undefined;
  const update = query.startsWith('UPDATE "');
  if (!update && !query.startsWith('INSERT INTO "')) return undefined;
  for (const owned of ownedTables.values()) {
    if (update) {
      if (query.startsWith(owned.update) && owned.joinNames.some((name) => query.includes(name))) return owned;
    } else if (query.startsWith(owned.insert)) {
      const next = query[owned.insert.length];
      if (next === '(' || next === ' ') return owned;
    }
  }
  return undefined;
}

/**
 * Keeps an INSERT of an audited entity with owner relations, or an UPDATE of one that names a
 * join column, that `queryRunner` sent in an audit context, with its parameters and the rows it
 * returned, until its transaction ends ({@link ownersForgotten}): TypeORM sends the entity events
 * of a `save()` after all its statements.
 *
 * @example
 * sentWrite(queryRunner, 'INSERT INTO "contract"("title", "clientId") VALUES ($1, $2) RETURNING "id"', ['Lease', 4], answer);
 */
export function sentWrite(queryRunner: QueryRunner, query: string, parameters: unknown, result: unknown): void {
  if (!ownedWrite(query) || !currentAuditContext()) return;
  const rows = (result as { rows?: unknown } | undefined)?.rows;
  const held = heldOf(queryRunner);
  held.sent.push({ query, parameters: listOf(parameters), returned: Array.isArray(rows) ? (rows as ObjectLiteral[]) : [] });
  if (held.sent.length > MAX_SENT) {
    held.sent.shift();
    held.lost = true;
  }
}

/**
 * Before `save()` updates a row: notes it when TypeORM did not load an owner relation of it
 * (nor found it changed), so that an UPDATE that then sets that owner reads it first ({@link ownersBeforeUpdate}).
 *
 * @example
 * unloadedOwners(updateEvent); // from the subscriber's beforeUpdate()
 */
export function unloadedOwners(row: OwnedRow): void {
  const { metadata, databaseEntity } = row;
  const owned = ownedEntity(metadata);
  if (!owned || !databaseEntity || !row.entity) return;
  if (
    !owned.relations.some((relation) => relation.getEntityValue(databaseEntity) === undefined && !row.updatedRelations?.includes(relation))
  )
    return;
  if (!currentAuditContext()) return;
  const key = `${metadata.tablePath}\u0000${sortedKey(metadata.primaryColumns.map((column) => column.getEntityValue(databaseEntity) as unknown))}`;
  unloaded.delete(key);
  unloaded.set(key, true);
  if (unloaded.size > MAX_UNLOADED) unloaded.delete(unloaded.keys().next().value as string);
}

/**
 * Before an UPDATE TypeORM sends: when it sets an owner of a row noted by {@link unloadedOwners},
 * reads that owner first, on the same connection, in a savepoint of its own inside a transaction
 * (a failed read leaves the transaction as it was; the owner is then unknown). Undefined, at no
 * cost, for any other query.
 *
 * @example
 * await ownersBeforeUpdate(queryRunner, 'UPDATE "contract" SET "clientId" = $1 WHERE "id" IN ($2)', [9, 3]);
 */
export function ownersBeforeUpdate(queryRunner: QueryRunner, query: string, parameters: unknown): Promise<void> | undefined {
  if (unloaded.size === 0 || !query.startsWith('UPDATE "')) return undefined;
  const owned = ownedWrite(query);
  const write = owned && readTypeormWrite(query);
  if (!owned || !write || write.table !== owned.metadata.tablePath) return undefined;
  const values = listOf(parameters);
  const key = `${write.table}\u0000${sortedKey(write.whereParams.map((at) => values[at]))}`;
  const joins = owned.relations.flatMap((relation) => relation.joinColumns).filter((join) => write.columns.includes(join.databaseName));
  if (joins.length === 0 || !unloaded.delete(key)) return undefined;
  const where = renumbered(write.where);
  if (!where) return undefined;
  const { metadata } = owned;
  const columns = [...metadata.primaryColumns, ...joins].map((column) => quoted(column.databaseName)).join(', ');
  const select = `SELECT ${columns} FROM ${write.table.split('.').map(quoted).join('.')} WHERE ${where.text}`;
  return readBefore(
    queryRunner,
    select,
    where.params.map((at) => values[at]),
    (rows) => {
      const before = heldOf(queryRunner).before;
      let table = before.get(write.table);
      if (!table) before.set(write.table, (table = new Map()));
      for (const row of rows) table.set(rowKey(metadata.primaryColumns.map((column) => row[column.databaseName])), row);
    },
  );
}

async function readBefore(
  queryRunner: QueryRunner,
  select: string,
  parameters: unknown[],
  keep: (rows: ObjectLiteral[]) => void,
): Promise<void> {
  const guarded = queryRunner.isTransactionActive || unreportedBlockOpen(queryRunner) === true;
  try {
    if (guarded) await queryRunner.query(`SAVEPOINT ${SAVEPOINT}`);
  } catch {
    return;
  }
  try {
    const rows: unknown = await queryRunner.query(select, parameters);
    if (guarded) await queryRunner.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
    if (Array.isArray(rows)) keep(rows as ObjectLiteral[]);
  } catch {
    if (!guarded) return;
    try {
      await queryRunner.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
      await queryRunner.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
    } catch {
      // The transaction cannot be helped: TypeORM's own statement reports it.
    }
  }
}

/**
 * For an insert `save()` made or an update of a row TypeORM loaded: the owners it wrote that the
 * entity does not hold, read from its INSERT or UPDATE ({@link sentWrite}), with, for an update,
 * the owner read before it ({@link ownersBeforeUpdate}). Undefined when the entity has no such
 * relation, holds them all, or (an update) none was written.
 *
 * @example
 * writtenOwners(queryRunner, 'insert', insertEvent); // { written: Map { client → 4 }, before: Map {}, unseen: 0 }
 */
export function writtenOwners(queryRunner: QueryRunner, op: EntityChangeOp, row: OwnedRow): WrittenOwners | undefined {
  const { metadata, entity } = row;
  if ((op !== 'insert' && op !== 'update') || !entity) return undefined;
  const relations = ownerRelations(metadata);
  if (relations.length === 0) return undefined;
  const held = heldByRunner.get(queryRunner);
  if (op === 'insert') {
    if (row.entityId === undefined) return undefined;
    const unheld = relations.filter((relation) => relation.getEntityValue(entity) === undefined);
    if (unheld.length === 0) return undefined;
    const key = rowKey(insertedKey(metadata, entity, row.entityId));
    const inserted = held && insertedRow(held, metadata, key);
    const owners: WrittenOwners = { written: new Map(), before: new Map(), unseen: 0 };
    for (const relation of unheld) {
      const value = inserted ? ownerIn(relation, inserted.write.columns, inserted.values, inserted.parameters, true) : UNREAD;
      if (value === UNREAD) owners.unseen += 1;
      else if (value !== NOT_WRITTEN) owners.written.set(relation, value);
    }
    return owners;
  }
  const { databaseEntity } = row;
  if (!databaseEntity) return undefined;
  const unchanged = relations.filter((relation) => !row.updatedRelations?.includes(relation));
  // No UPDATE that names a join column was kept: none set an owner.
  if (unchanged.length === 0 || !held) return undefined;
  const keyValues = metadata.primaryColumns.map((column) => column.getEntityValue(databaseEntity) as unknown);
  const updated = updatedRow(held, metadata, sortedKey(keyValues), unchanged);
  // Not found: no UPDATE of it set an owner, unless the statement was dropped or could not be read.
  if (updated === undefined && !held.lost) return undefined;
  if (updated === undefined || updated === UNREAD) return { written: new Map(), before: new Map(), unseen: 1 };
  const owners: WrittenOwners = { written: new Map(), before: new Map(), unseen: 0 };
  const read = held.before.get(metadata.tablePath)?.get(rowKey(keyValues));
  for (const relation of unchanged) {
    const value = ownerIn(relation, updated.write.columns, updated.write.rows[0], updated.parameters, false);
    if (value === UNREAD) owners.unseen += 1;
    if (value === UNREAD || value === NOT_WRITTEN) continue;
    owners.written.set(relation, value);
    if (read && relation.joinColumns.every((join) => join.databaseName in read)) {
      owners.before.set(
        relation,
        idOf(relation, (join) => read[join.databaseName] as unknown),
      );
    }
  }
  return owners.written.size > 0 || owners.unseen > 0 ? owners : undefined;
}

/**
 * Forgets what was kept for `queryRunner`'s statements: its transaction ended, and with it every
 * `save()` in it (TypeORM sends a save's events before its COMMIT).
 *
 * @example
 * ownersForgotten(queryRunner); // from afterTransactionCommit() and afterTransactionRollback()
 */
export function ownersForgotten(queryRunner: QueryRunner): void {
  heldByRunner.delete(queryRunner);
}

/** An inserted row's key: as TypeORM set it on the entity, else from the event's id (a single key's value, or a map of them). */
function insertedKey(metadata: EntityMetadata, entity: ObjectLiteral, entityId: unknown): unknown[] {
  const primaries = metadata.primaryColumns;
  return primaries.map((column) => {
    const set = column.getEntityValue(entity) as unknown;
    if (set !== undefined) return set;
    return primaries.length === 1 || entityId === null || typeof entityId !== 'object'
      ? entityId
      : (column.getEntityValue(entityId as ObjectLiteral) as unknown);
  });
}

const UNREAD = Symbol('unread');
const NOT_WRITTEN = Symbol('not written');

/** The row with key `key` among the INSERTs of `metadata`'s table, with the values written in it. */
function insertedRow(
  held: Held,
  metadata: EntityMetadata,
  key: string,
): { write: TypeormWrite; values: TypeormWrite['rows'][number]; parameters: readonly unknown[] } | undefined {
  for (let i = held.sent.length - 1; i >= 0; i--) {
    const sent = held.sent[i];
    const write = readOf(sent);
    if (write?.kind !== 'insert' || write.table !== metadata.tablePath) continue;
    const found = write.rows.findIndex((values, at) => {
      const keys = metadata.primaryColumns.map((column) => {
        const place = write.columns.indexOf(column.databaseName);
        const value = place < 0 ? undefined : values[place];
        return typeof value === 'object' ? sent.parameters[value.param] : (sent.returned[at]?.[column.databaseName] as unknown);
      });
      return rowKey(keys) === key;
    });
    if (found >= 0) return { write, values: write.rows[found], parameters: sent.parameters };
  }
  return undefined;
}

/**
 * The last UPDATE of `metadata`'s table whose WHERE names the row with sorted key `key` and that
 * may set one of `relations`; UNREAD when one that names a join column of them cannot be read.
 */
function updatedRow(
  held: Held,
  metadata: EntityMetadata,
  key: string,
  relations: readonly RelationMetadata[],
): { write: TypeormWrite; parameters: readonly unknown[] } | typeof UNREAD | undefined {
  const prefix = ownedEntity(metadata)?.update;
  const names = relations.flatMap((relation) => relation.joinColumns).map((join) => quoted(join.databaseName));
  for (let i = held.sent.length - 1; i >= 0; i--) {
    const sent = held.sent[i];
    // Only a statement that names a join column can set one: any other is not read.
    if (prefix === undefined || !sent.query.startsWith(prefix) || !names.some((name) => sent.query.includes(name))) continue;
    const write = readOf(sent);
    if (!write) return UNREAD;
    if (sortedKey(write.whereParams.map((at) => sent.parameters[at])) === key) return { write, parameters: sent.parameters };
  }
  return undefined;
}

/** The owner `relation` has in a row written with `values` in `columns`; for an insert, a column left out takes its default. */
function ownerIn(
  relation: RelationMetadata,
  columns: readonly string[],
  values: TypeormWrite['rows'][number],
  parameters: readonly unknown[],
  insert: boolean,
): unknown {
  const written = relation.joinColumns.map((join) => {
    const place = columns.indexOf(join.databaseName);
    const value = place < 0 ? (insert ? 'default' : NOT_WRITTEN) : values[place];
    if (value === 'null') return null;
    // A join column with no default of its own is NULL by default.
    if (value === 'default') return join.default === undefined ? null : UNREAD;
    if (value === 'expression') return UNREAD;
    if (value === NOT_WRITTEN) return NOT_WRITTEN;
    return value.param < parameters.length ? parameters[value.param] : UNREAD;
  });
  if (written.includes(UNREAD)) return UNREAD;
  if (written.every((value) => value === NOT_WRITTEN)) return NOT_WRITTEN;
  if (written.includes(NOT_WRITTEN)) return UNREAD;
  return idOf(relation, (join) => written[relation.joinColumns.indexOf(join)]);
}

/** A relation's id as a diff shows it: its one join column's value, or an object of them (null when all are null). */
function idOf(relation: RelationMetadata, valueOf: (join: ColumnMetadata) => unknown): unknown {
  const joins = relation.joinColumns;
  if (joins.length === 1) return valueOf(joins[0]) ?? null;
  const id: Record<string, unknown> = {};
  for (const join of joins) id[relationKeyName(join)] = valueOf(join) ?? null;
  return Object.values(id).every((value) => value === null) ? null : id;
}

function readOf(sent: Sent): TypeormWrite | undefined {
  if (sent.read === undefined) sent.read = readTypeormWrite(sent.query) ?? null;
  return sent.read ?? undefined;
}

function heldOf(queryRunner: QueryRunner): Held {
  let held = heldByRunner.get(queryRunner);
  if (!held) heldByRunner.set(queryRunner, (held = { sent: [], lost: false, before: new Map() }));
  return held;
}

/** A key value as text: a number and its decimal string (a `bigint` as loaded) are the same key. */
function keyText(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  return String(value);
}

/** A row's key, its primary columns' values in order. */
function rowKey(values: readonly unknown[]): string {
  return values.map(keyText).join('\u0000');
}

/** A row's key as a WHERE clause's parameters give it, whatever their order. */
function sortedKey(values: readonly unknown[]): string {
  return values.map(keyText).sort().join('\u0000');
}

/** A query's positional parameters (TypeORM's PostgreSQL driver takes no others). */
function listOf(parameters: unknown): readonly unknown[] {
  return Array.isArray(parameters) ? parameters : [];
}

function quoted(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
