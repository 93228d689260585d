import { type DataSource, type EntityMetadata, type QueryRunner } from 'typeorm';
import { type AuditContext, currentAuditContext, ownerOf } from '../audit-context';
import { type TableName } from './sql-reader';
import { unreportedBlockOpen } from './unreported-transaction';

/** A write statement on an audited entity's table, made in an audit context, that no entity event has answered yet. */
interface Unheard {
  context: AuditContext;
  table: string;
  /** The transaction depth it was made at: 0 outside a transaction TypeORM reports (committed at once, unless `raw`). */
  depth: number;
  /** Made at depth 0 inside a transaction block TypeORM does not report (`BEGIN` as SQL): held until the block ends. */
  raw: boolean;
  /** The context its count was added to, when counted in `entitiesOmitted` already (outside a transaction: taken back when its event follows). */
  countedOn: AuditContext | undefined;
  /** Its place in the order of writes, for `ROLLBACK TO` a savepoint set before it. */
  order: number;
}

/** The tables of the audited entities, per DataSource: each table's name and the schemas it is audited in. */
const auditedTables = new WeakMap<DataSource, ReadonlyMap<string, ReadonlySet<string>>>();
const unheardByRunner = new WeakMap<QueryRunner, Unheard[]>();
/** The order of the last write seen, on any runner. */
let lastOrder = 0;

/**
 * Notes the tables of a DataSource's audited entities, whose writes {@link writesSeen} follows:
 * each in its entity's schema, or the DataSource's, or `public`.
 *
 * @example
 * watchAuditedTables(dataSource, [dataSource.getMetadata(Contract)]);
 */
export function watchAuditedTables(dataSource: DataSource, audited: readonly EntityMetadata[]): void {
  const tables = new Map<string, Set<string>>();
  for (const [name, schemas] of auditedTables.get(dataSource) ?? []) tables.set(name, new Set(schemas));
  const fallback = (dataSource.options as { schema?: string } | undefined)?.schema ?? 'public';
  for (const metadata of audited) {
    const schemas = tables.get(metadata.tableName) ?? new Set<string>();
    schemas.add(metadata.schema ?? fallback);
    tables.set(metadata.tableName, schemas);
  }
  auditedTables.set(dataSource, tables);
}

/**
 * The names of the tables in `tables` that are an audited entity's, on `queryRunner`'s DataSource:
 * an unqualified name by its name, a qualified one only in the entity's own schema.
 *
 * @example
 * auditedWrites(queryRunner, [{ schema: 'archive', name: 'contract' }]); // [] when `contract` is audited in `public`
 */
export function auditedWrites(queryRunner: QueryRunner, tables: readonly TableName[]): string[] {
  const audited = auditedTables.get(queryRunner.connection);
  if (!audited) return [];
  const isAudited = ({ schema, name }: TableName) => {
    const schemas = audited.get(name);
    return schemas !== undefined && (schema === undefined || schemas.has(schema));
  };
  return tables.filter(isAudited).map(({ name }) => name);
}

/**
 * Write statements on audited entities' tables (`tables`, see {@link auditedWrites}) that
 * PostgreSQL answered, in an audit context: each waits for the entity event TypeORM sends after
 * it, and is counted on the request or outermost scope the context belongs to (`ownerOf()`).
 * Outside a transaction it is counted in `entitiesOmitted` at once (the event, which follows
 * before the caller resumes, takes it back); inside one, when the outer transaction commits
 * ({@link unheardCommitted}); inside a block TypeORM does not report (`raw`: `BEGIN` sent as
 * SQL), when that block ends ({@link rawWritesEnded}).
 *
 * @example
 * writesSeen(queryRunner, ['contract'], false); // from the query follower: counted unless an event follows
 */
export function writesSeen(queryRunner: QueryRunner, tables: readonly string[], raw: boolean): void {
  if (tables.length === 0) return;
  const context = currentAuditContext();
  if (!context) return;
  const depth = depthOf(queryRunner);
  const inBlock = depth === 0 && raw;
  const owner = ownerOf(context);
  const countedOn = depth === 0 && !inBlock ? owner : undefined;
  if (countedOn) countedOn.omitted += tables.length;
  // What an earlier request left counted on a long-lived runner is its own: not held any longer.
  const unheard = (unheardByRunner.get(queryRunner) ?? []).filter((write) => !write.countedOn || write.countedOn === owner);
  if (inBlock && !unheard.some((write) => write.raw)) watchRawBlock(queryRunner, owner);
  for (const table of tables) unheard.push({ context, table, depth, raw: inBlock, countedOn, order: (lastOrder += 1) });
  unheardByRunner.set(queryRunner, unheard);
}

/**
 * Where the next write will stand in the order of writes: a savepoint set now keeps it, and
 * `ROLLBACK TO` that savepoint drops the writes from there ({@link unheardRolledBackTo}).
 *
 * @example
 * const mark = unheardMark(); // at SAVEPOINT s
 */
export function unheardMark(): number {
  return lastOrder + 1;
}

/**
 * `ROLLBACK TO` a savepoint: the writes made since `mark` did not happen (a count already made for one is taken back).
 *
 * @example
 * unheardRolledBackTo(queryRunner, mark); // at ROLLBACK TO s
 */
export function unheardRolledBackTo(queryRunner: QueryRunner, mark: number): void {
  const unheard = unheardByRunner.get(queryRunner);
  if (!unheard) return;
  for (const write of unheard)
    if (write.order >= mark && write.countedOn) write.countedOn.omitted = Math.max(0, write.countedOn.omitted - 1);
  unheardByRunner.set(
    queryRunner,
    unheard.filter((write) => write.order < mark),
  );
}

/**
 * Whether `queryRunner` holds writes made in a block TypeORM does not report.
 *
 * @example
 * const holding = rawWritesHeld(queryRunner); // true once a raw block holds a write, until it ends
 */
export function rawWritesHeld(queryRunner: QueryRunner): boolean {
  return unheardByRunner.get(queryRunner)?.some((write) => write.raw) === true;
}

/**
 * The block TypeORM does not report ended: its writes count when it `committed` (or ended unseen), not when it rolled back.
 *
 * @example
 * rawWritesEnded(queryRunner, false); // ROLLBACK
 */
export function rawWritesEnded(queryRunner: QueryRunner, committed: boolean): void {
  const unheard = unheardByRunner.get(queryRunner);
  if (!unheard?.some((write) => write.raw)) return;
  unheardByRunner.set(
    queryRunner,
    unheard.filter((write) => !write.raw),
  );
  if (committed) for (const write of unheard) if (write.raw) ownerOf(write.context).omitted += 1;
}

/**
 * An entity event on `metadata`'s table answers every write on that table `queryRunner` made before it.
 *
 * @example
 * writeHeard(queryRunner, dataSource.getMetadata(Contract)); // from afterInsert(), afterUpdate(), …
 */
export function writeHeard(queryRunner: QueryRunner, metadata: EntityMetadata): void {
  const unheard = unheardByRunner.get(queryRunner);
  if (!unheard) return;
  const context = currentAuditContext();
  const left = unheard.filter((write) => write.table !== metadata.tableName);
  for (const write of unheard) {
    // Taken back only in the request it was counted for (a runner can outlive a request).
    if (write.table === metadata.tableName && write.countedOn && write.context === context)
      write.countedOn.omitted = Math.max(0, write.countedOn.omitted - 1);
  }
  unheardByRunner.set(queryRunner, left);
}

/**
 * After a commit: once the outer transaction has committed, each write in it that no event answered is counted.
 *
 * @example
 * unheardCommitted(queryRunner); // from afterTransactionCommit()
 */
export function unheardCommitted(queryRunner: QueryRunner): void {
  if (depthOf(queryRunner) > 0) return;
  const unheard = unheardByRunner.get(queryRunner);
  if (!unheard) return;
  unheardByRunner.delete(queryRunner);
  for (const write of unheard) if (!write.countedOn) ownerOf(write.context).omitted += 1;
}

/**
 * After a rollback (to `depth`: the depth left, 0 for the whole transaction, which ends a block
 * opened as SQL under it too): its writes did not happen.
 *
 * @example
 * unheardRolledBack(queryRunner); // from afterTransactionRollback()
 */
export function unheardRolledBack(queryRunner: QueryRunner, depth = depthOf(queryRunner)): void {
  const unheard = unheardByRunner.get(queryRunner);
  if (unheard)
    unheardByRunner.set(
      queryRunner,
      unheard.filter((write) => write.countedOn || (write.depth <= depth && !(depth === 0 && write.raw))),
    );
}

/** Before `owner`'s changes are taken: a block that ended unseen (through the driver) counts its writes. */
function watchRawBlock(queryRunner: QueryRunner, owner: AuditContext): void {
  const settle = () => {
    if (depthOf(queryRunner) === 0 && unreportedBlockOpen(queryRunner) === false) rawWritesEnded(queryRunner, true);
    // Still open: asked again at the next take.
    if (rawWritesHeld(queryRunner)) (owner.blocks ??= []).push(settle);
  };
  (owner.blocks ??= []).push(settle);
}

/** TypeORM keeps the savepoint depth in a protected field; without it, a transaction counts as depth 1. */
function depthOf(queryRunner: QueryRunner): number {
  if (!queryRunner.isTransactionActive) return 0;
  return (queryRunner as unknown as { transactionDepth?: number }).transactionDepth ?? 1;
}
