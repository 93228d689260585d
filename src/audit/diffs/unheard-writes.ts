import { type DataSource, type EntityMetadata, type QueryRunner } from 'typeorm';
import { type AuditContext, currentAuditContext } from '../audit-context';

/** A write statement on an audited entity's table, made in an audit context, that no entity event has answered yet. */
interface Unheard {
  context: AuditContext;
  table: string;
  /** The transaction depth it was made at: 0 outside a transaction (committed at once). */
  depth: number;
  /** Counted in the context's `entitiesOmitted` already (outside a transaction: taken back when its event follows). */
  counted: boolean;
}

/** The tables of the audited entities, per DataSource. */
const auditedTables = new WeakMap<DataSource, ReadonlySet<string>>();
const unheardByRunner = new WeakMap<QueryRunner, Unheard[]>();

/** `INSERT INTO t`, `UPDATE [ONLY] t`, `DELETE FROM [ONLY] t`, `TRUNCATE [TABLE] [ONLY] t`, t maybe schema-qualified and quoted. */
const WRITE =
  /^\s*(?:insert\s+into|update(?:\s+only)?|delete\s+from(?:\s+only)?|truncate(?:\s+table)?(?:\s+only)?)\s+((?:"(?:[^"]|"")+"|[\w$]+)(?:\s*\.\s*(?:"(?:[^"]|"")+"|[\w$]+))*)/i;

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
 * The table a write statement (insert, update, delete, truncate) names, unquoted; undefined for any other statement.
 *
 * @example
 * writtenTable('UPDATE "public"."contract" SET "title" = $1'); // 'contract'
 * writtenTable('SELECT 1'); // undefined
 */
export function writtenTable(query: string): string | undefined {
  const path = WRITE.exec(query)?.[1];
  if (!path) return undefined;
  const last = /(?:"((?:[^"]|"")+)"|([\w$]+))\s*$/.exec(path);
  if (!last) return undefined;
  return last[1] !== undefined ? last[1].replace(/""/g, '"') : last[2].toLowerCase();
}

/**
 * A statement PostgreSQL answered, seen by the subscriber's `afterQuery()`: a write on an audited
 * entity's table inside an audit context waits for the entity event TypeORM sends after it. Outside
 * a transaction it is counted in the context's `entitiesOmitted` at once (the event, which follows
 * before the caller resumes, takes it back); inside one, when the outer transaction commits
 * ({@link unheardCommitted}). A COMMIT answered with ROLLBACK drops what the transaction held.
 *
 * @example
 * writeSeen(queryRunner, 'UPDATE "contract" SET "title" = $1', rawResults); // from afterQuery(): counted unless an event follows
 */
export function writeSeen(queryRunner: QueryRunner, query: string, result: unknown): void {
  if (query === 'COMMIT' && (result as { command?: unknown } | undefined)?.command === 'ROLLBACK') return unheardRolledBack(queryRunner, 0);
  const tables = auditedTables.get(queryRunner.connection);
  if (!tables) return;
  const table = writtenTable(query);
  if (table === undefined || !tables.has(table)) return;
  const context = currentAuditContext();
  if (!context) return;
  const depth = depthOf(queryRunner);
  if (depth === 0) context.omitted += 1;
  // What an earlier request left counted on a long-lived runner is its own: not held any longer.
  const unheard = (unheardByRunner.get(queryRunner) ?? []).filter((write) => !write.counted || write.context === context);
  unheard.push({ context, table, depth, counted: depth === 0 });
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
    if (write.table === metadata.tableName && write.counted && write.context === context)
      context.omitted = Math.max(0, context.omitted - 1);
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
  for (const write of unheard) if (!write.counted) write.context.omitted += 1;
}

/**
 * After a rollback (to `depth`: the depth left, 0 for the whole transaction): its writes did not happen.
 *
 * @example
 * unheardRolledBack(queryRunner); // from afterTransactionRollback()
 */
export function unheardRolledBack(queryRunner: QueryRunner, depth = depthOf(queryRunner)): void {
  const unheard = unheardByRunner.get(queryRunner);
  if (unheard)
    unheardByRunner.set(
      queryRunner,
      unheard.filter((write) => write.counted || write.depth <= depth),
    );
}

/** TypeORM keeps the savepoint depth in a protected field; without it, a transaction counts as depth 1. */
function depthOf(queryRunner: QueryRunner): number {
  if (!queryRunner.isTransactionActive) return 0;
  return (queryRunner as unknown as { transactionDepth?: number }).transactionDepth ?? 1;
}
