import { type DataSource, type EntityMetadata, type QueryRunner } from 'typeorm';
import { type AuditContext, currentAuditContext, ownerOf } from '../audit-context';
import { writtenTables } from './sql-writes';
import { unreportedBlockOpen } from './unreported-transaction';

/** A write statement on an audited entity's table, made in an audit context, that no entity event has answered yet. */
interface Unheard {
  context: AuditContext;
  table: string;
  /** The transaction depth it was made at: 0 outside a transaction TypeORM reports (committed at once, unless `raw`). */
  depth: number;
  /** Made at depth 0 inside a transaction block TypeORM does not report (`BEGIN` as SQL): held until `pg` says the block ended. */
  raw: boolean;
  /** The context its count was added to, when counted in `entitiesOmitted` already (outside a transaction: taken back when its event follows). */
  countedOn: AuditContext | undefined;
}

/** The tables of the audited entities, per DataSource. */
const auditedTables = new WeakMap<DataSource, ReadonlySet<string>>();
const unheardByRunner = new WeakMap<QueryRunner, Unheard[]>();

/**
 * Notes the tables of a DataSource's audited entities, whose writes {@link writeSeen} follows.
 *
 * @example
 * watchAuditedTables(dataSource, [dataSource.getMetadata(Contract)]);
 */
export function watchAuditedTables(dataSource: DataSource, audited: readonly EntityMetadata[]): void {
  auditedTables.set(dataSource, new Set([...(auditedTables.get(dataSource) ?? []), ...audited.map((metadata) => metadata.tableName)]));
}

/**
 * The table the first write statement (insert, update, delete, truncate, merge) of `query` names,
 * unquoted; undefined when it has none. Leading comments are skipped (see `writtenTables()`).
 *
 * @example
 * writtenTable('UPDATE "public"."contract" SET "title" = $1'); // 'contract'
 * writtenTable('SELECT 1'); // undefined
 */
export function writtenTable(query: string): string | undefined {
  return writtenTables(query)[0];
}

/**
 * A statement PostgreSQL answered, seen by the subscriber's `afterQuery()`: each write statement
 * in it on an audited entity's table inside an audit context waits for the entity event TypeORM
 * sends after it, and is counted on the request or outermost scope the context belongs to
 * (`ownerOf()`). Outside a transaction it is counted in `entitiesOmitted` at once (the event,
 * which follows before the caller resumes, takes it back); inside one, when the outer transaction
 * commits ({@link unheardCommitted}); inside a block TypeORM does not report (`BEGIN` sent as SQL),
 * when `pg` says the block ended, unless it ended with ROLLBACK. A COMMIT answered with ROLLBACK
 * drops what the transaction held.
 *
 * @example
 * writeSeen(queryRunner, 'UPDATE "contract" SET "title" = $1', rawResults); // from afterQuery(): counted unless an event follows
 */
export function writeSeen(queryRunner: QueryRunner, query: string, result: unknown): void {
  const command = (result as { command?: unknown } | undefined)?.command;
  rawBlockEnded(queryRunner, command);
  if (query === 'COMMIT' && command === 'ROLLBACK') return unheardRolledBack(queryRunner, 0);
  const tables = auditedTables.get(queryRunner.connection);
  if (!tables) return;
  const written = writtenTables(query).filter((table) => tables.has(table));
  if (written.length === 0) return;
  const context = currentAuditContext();
  if (!context) return;
  const depth = depthOf(queryRunner);
  const raw = depth === 0 && unreportedBlockOpen(queryRunner) === true;
  const owner = ownerOf(context);
  const countedOn = depth === 0 && !raw ? owner : undefined;
  if (countedOn) countedOn.omitted += written.length;
  // What an earlier request left counted on a long-lived runner is its own: not held any longer.
  const unheard = (unheardByRunner.get(queryRunner) ?? []).filter((write) => !write.countedOn || write.countedOn === owner);
  if (raw && !unheard.some((write) => write.raw)) watchRawBlock(queryRunner, owner);
  for (const table of written) unheard.push({ context, table, depth, raw, countedOn });
  unheardByRunner.set(queryRunner, unheard);
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

/** When `pg` says the block opened as SQL has ended (`command`: PostgreSQL's answer to its end, if seen): its writes count unless it rolled back. */
function rawBlockEnded(queryRunner: QueryRunner, command: unknown): void {
  const unheard = unheardByRunner.get(queryRunner);
  if (!unheard?.some((write) => write.raw)) return;
  if (depthOf(queryRunner) > 0 || unreportedBlockOpen(queryRunner) !== false) return;
  unheardByRunner.set(
    queryRunner,
    unheard.filter((write) => !write.raw),
  );
  if (command === 'ROLLBACK') return;
  for (const write of unheard) if (write.raw) ownerOf(write.context).omitted += 1;
}

/** Before `owner`'s changes are taken: a block that ended unseen (through the driver) counts its writes. */
function watchRawBlock(queryRunner: QueryRunner, owner: AuditContext): void {
  const settle = () => {
    rawBlockEnded(queryRunner, undefined);
    // Still open: asked again at the next take.
    if (unheardByRunner.get(queryRunner)?.some((write) => write.raw)) (owner.blocks ??= []).push(settle);
  };
  (owner.blocks ??= []).push(settle);
}

/** TypeORM keeps the savepoint depth in a protected field; without it, a transaction counts as depth 1. */
function depthOf(queryRunner: QueryRunner): number {
  if (!queryRunner.isTransactionActive) return 0;
  return (queryRunner as unknown as { transactionDepth?: number }).transactionDepth ?? 1;
}
