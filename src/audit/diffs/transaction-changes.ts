import { type QueryRunner } from 'typeorm';
import { addEntityChanges, type AuditContext, newAuditContext, type StagedChange, takeEntityChanges } from '../audit-context';
import { type EntityChanges } from './entity-change';

/** The changes of one transaction level; past the byte bound, only counted. */
interface Level {
  changes: StagedChange[];
  bytes: number;
  omitted: number;
}

/** Changes made through one query runner, by transaction depth (1 = the outer transaction, 2+ = savepoints). */
interface Pending {
  context: AuditContext;
  maxBytes: number;
  levels: Level[];
}

const pendingByRunner = new WeakMap<QueryRunner, Pending>();

/** TypeORM keeps the savepoint depth in a protected field; without it, a transaction counts as depth 1. */
function depthOf(queryRunner: QueryRunner): number {
  if (!queryRunner.isTransactionActive) return 0;
  return (queryRunner as unknown as { transactionDepth?: number }).transactionDepth ?? 1;
}

/**
 * Holds a change until its transaction commits; outside a transaction it is committed already.
 * What a transaction holds is bounded by `maxBytes` (a change past it is only counted).
 *
 * @example
 * stageChange(queryRunner, context, { value: change, bytes: 120 }, 32 * 1024);
 */
export function stageChange(queryRunner: QueryRunner, context: AuditContext, change: StagedChange, maxBytes: number): void {
  const depth = depthOf(queryRunner);
  if (depth === 0) return addEntityChanges(context, [change], maxBytes);
  let pending = pendingByRunner.get(queryRunner);
  if (!pending) pendingByRunner.set(queryRunner, (pending = { context, maxBytes, levels: [] }));
  const level = (pending.levels[depth] ??= { changes: [], bytes: 0, omitted: 0 });
  const held = pending.levels.reduce((sum, l) => sum + l.bytes, 0);
  if (held + change.bytes > maxBytes) {
    level.omitted += 1;
    return;
  }
  level.changes.push(change);
  level.bytes += change.bytes;
}

/**
 * After a commit: a released savepoint's changes join its parent; the outer commit hands them all
 * to the context they were made in.
 *
 * @example
 * transactionCommitted(queryRunner); // from the subscriber's afterTransactionCommit()
 */
export function transactionCommitted(queryRunner: QueryRunner): void {
  const pending = pendingByRunner.get(queryRunner);
  if (!pending) return;
  const depth = depthOf(queryRunner);
  const done = merged(pending.levels.splice(depth + 1));
  if (depth > 0) {
    pending.levels[depth] = merged([pending.levels[depth], done]);
    return;
  }
  pendingByRunner.delete(queryRunner);
  handOver(pending.context, done, pending.maxBytes);
}

/**
 * After a rollback: the changes of the rolled-back transaction (or savepoint) are dropped.
 *
 * @example
 * transactionRolledBack(queryRunner); // from the subscriber's afterTransactionRollback()
 */
export function transactionRolledBack(queryRunner: QueryRunner): void {
  const pending = pendingByRunner.get(queryRunner);
  if (!pending) return;
  const depth = depthOf(queryRunner);
  pending.levels.length = Math.min(pending.levels.length, depth + 1);
  if (depth === 0) pendingByRunner.delete(queryRunner);
}

/**
 * Takes the uncommitted changes of the transaction `queryRunner` is in, for `AuditService.record()`:
 * its row commits or rolls back with them.
 *
 * @example
 * const changes = takeTransactionChanges(manager.queryRunner); // { entities: [...] } or undefined
 */
export function takeTransactionChanges(queryRunner: QueryRunner | undefined): EntityChanges | undefined {
  const pending = queryRunner ? pendingByRunner.get(queryRunner) : undefined;
  if (!pending) return undefined;
  const bounded = newAuditContext('scope');
  handOver(bounded, merged(pending.levels), pending.maxBytes);
  pending.levels = [];
  return takeEntityChanges(bounded);
}

function merged(levels: (Level | undefined)[]): Level {
  const into: Level = { changes: [], bytes: 0, omitted: 0 };
  for (const level of levels) {
    if (!level) continue;
    into.changes.push(...level.changes);
    into.bytes += level.bytes;
    into.omitted += level.omitted;
  }
  return into;
}

function handOver(context: AuditContext, level: Level, maxBytes: number): void {
  addEntityChanges(context, level.changes, maxBytes);
  context.omitted += level.omitted;
}
