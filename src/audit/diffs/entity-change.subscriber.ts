import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import {
  type AfterQueryEvent,
  type BeforeQueryEvent,
  DataSource,
  type EntitySubscriberInterface,
  type InsertEvent,
  type ObjectLiteral,
  type QueryRunner,
  type RecoverEvent,
  type RemoveEvent,
  type SoftRemoveEvent,
  type TransactionCommitEvent,
  type TransactionRollbackEvent,
  type UpdateEvent,
} from 'typeorm';
import { currentAuditContext, ownerOf } from '../audit-context';
import { type ResolvedAuditOptions } from '../audit-options';
import { AUDIT_OPTIONS } from '../audit.constants';
import { compileRedactor } from '../json-safe';
import { redactText } from '../redaction';
import { AUDIT_EVENTS, ConsoleSink } from '../sinks';
import { auditedEntityRules, type AuditedEntityRule } from './audited-entities';
import { capturedChange } from './cut-change';
import { type ChangeSource, entityChange } from './entity-diff';
import { type EntityChangeOp } from './entity-change';
import { queryAnswered, queryFailed, statusNeeded, transactionEnded } from './query-follower';
import { cascadedWrites, databaseCascades, type DatabaseCascades } from './database-cascades';
import { loadedRowUnwritten, statementAnswered, wroteNoRow } from './statement-rows';
import { confirmRecordedRows, stageChange, stageOmitted, transactionCommitted, transactionRolledBack } from './transaction-changes';
import { lookUpRelations, unheardCommitted, unheardRolledBack, watchAuditedTables, writeHeard } from './unheard-writes';
import { insertAnswered } from './upsert-statement';
import { answeredByServer, followAnswers, onceAnswered } from './unreported-transaction';
import { ownersBeforeUpdate, ownersForgotten, sentWrite, unloadedOwners, watchOwners, writtenOwners } from './written-owners';

/**
 * The TypeORM subscriber that captures changes of audited entities made inside an audit context
 * (a mutating request, or `auditScope()`), holds them until their transaction commits (drops them
 * on rollback, and on a COMMIT that PostgreSQL answered with ROLLBACK) and hands them to the
 * context for its audit row; it follows the outcome of `AuditService.record()` rows the same way.
 * Added at start-up to each initialized DataSource that has an audited entity, and by `record()`
 * to the DataSource it writes through. Every callback but `beforeTransactionCommit` (which
 * looks up the transaction's `record()` rows before its COMMIT) and `beforeQuery` (which, before
 * an UPDATE that sets an owner TypeORM did not load, reads it: `written-owners.ts`) is
 * synchronous; none throws: a fault is counted in {@link faults}, written as an `audit.diff_failed` line, and the
 * change is counted in the row's `changes.entitiesOmitted`. A row's diffs take at most half of
 * `maxEntryBytes`: past that, values are cut (marked with their size), each change keeping its
 * entity, id and field names; only changes whose names alone pass it are counted in
 * `entitiesOmitted` too, and so is each write statement on an audited entity's table that TypeORM
 * sent no event for (`unheard-writes.ts`; raw SQL is read statement by statement, `query-follower.ts`),
 * and each foreign key of an audited table whose `ON DELETE` / `ON UPDATE` action a reported
 * delete, update or upsert sets going in the database, along the chain of such keys
 * (`database-cascades.ts`). An owner TypeORM writes through the owner's one-to-many list, which
 * the child never holds, is read from TypeORM's INSERT or UPDATE; one that cannot be read is
 * counted too (`written-owners.ts`).
 *
 * @example
 * const subscriber = app.get(EntityChangeSubscriber);
 * subscriber.faults; // 0
 */
@Injectable()
export class EntityChangeSubscriber implements EntitySubscriberInterface, OnApplicationBootstrap {
  private readonly rules = new Map<unknown, AuditedEntityRule>();
  /** The foreign keys the database follows on its own (`ON DELETE CASCADE` …) that may write audited tables, by the entity whose write sets them going. */
  private readonly cascades: DatabaseCascades = new Map();
  private readonly isRedacted: (key: string) => boolean;
  private faultCount = 0;
  /** Diffs take at most half of `maxEntryBytes`, leaving the rest to the body, metadata and fixed fields. */
  private readonly budget: number;

  constructor(
    @Inject(AUDIT_OPTIONS) private readonly options: ResolvedAuditOptions,
    private readonly discovery: DiscoveryService,
    private readonly console: ConsoleSink,
  ) {
    this.isRedacted = compileRedactor(options.redactKeys);
    this.budget = Math.floor(options.maxEntryBytes / 2);
  }

  /** Changes that could not be captured since start. */
  get faults(): number {
    return this.faultCount;
  }

  onApplicationBootstrap(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (instance instanceof DataSource) this.watch(instance);
    }
  }

  /** Subscribes to `dataSource` when it is initialized and holds an audited entity; true when it does. */
  watch(dataSource: DataSource): boolean {
    if (!dataSource.isInitialized) return false;
    const rules = auditedEntityRules(dataSource.entityMetadatas, this.options.diffs);
    if (rules.size === 0) return false;
    for (const [target, rule] of rules) this.rules.set(target, rule);
    databaseCascades(dataSource.entityMetadatas, (metadata) => rules.has(metadata.target), this.cascades);
    const audited = dataSource.entityMetadatas.filter((metadata) => rules.has(metadata.target));
    watchAuditedTables(dataSource, audited);
    watchOwners(audited);
    this.followTransactions(dataSource);
    return true;
  }

  /** Follows the outcome of every transaction on `dataSource` (for `record()` rows too, with or without audited entities). */
  followTransactions(dataSource: DataSource): void {
    if (!dataSource.subscribers.includes(this)) dataSource.subscribers.push(this);
  }

  afterInsert(event: InsertEvent<unknown>): void {
    this.capture('insert', event.queryRunner, event as ChangeSource);
  }

  /** Notes a row whose owner TypeORM did not load, so that an UPDATE that sets it through the owner's list reads it first. */
  beforeUpdate(event: UpdateEvent<unknown>): void {
    try {
      if (this.rules.has(event.metadata.target)) unloadedOwners(event as ChangeSource);
    } catch (error) {
      this.fault(error, this.rules.get(event.metadata.target));
    }
  }

  afterUpdate(event: UpdateEvent<unknown>): void {
    this.capture('update', event.queryRunner, event as ChangeSource);
  }

  afterRemove(event: RemoveEvent<unknown>): void {
    this.capture('remove', event.queryRunner, event as ChangeSource);
  }

  afterSoftRemove(event: SoftRemoveEvent<unknown>): void {
    this.capture('soft-remove', event.queryRunner, event as ChangeSource);
  }

  afterRecover(event: RecoverEvent<unknown>): void {
    this.capture('recover', event.queryRunner, event as ChangeSource);
  }

  /** An UPDATE that sets an owner TypeORM did not load waits for it to be read (see {@link ownersBeforeUpdate}). */
  beforeQuery(event: BeforeQueryEvent): Promise<void> | undefined {
    try {
      followAnswers(event.queryRunner);
      return ownersBeforeUpdate(event.queryRunner, event.query, event.parameters);
    } catch (error) {
      this.fault(error, undefined);
    }
    return undefined;
  }

  /**
   * A failed query whose following depends on the transaction status is followed with the status
   * the server sends after its error, which TypeORM's caller then waits for (see
   * {@link onceAnswered}); after an error `pg` made itself (a `query_timeout`), that status is not known.
   * A write on a relation the module has not met yet is followed once PostgreSQL's catalog says
   * which audited tables it may write through (a view, a child table: {@link lookUpRelations},
   * at most `writeTimeoutMs`), which TypeORM's caller waits for too.
   */
  afterQuery(event: AfterQueryEvent): Promise<void> | undefined {
    try {
      if (!event.success) {
        const settle = (statusRead: boolean) => {
          try {
            queryFailed(event.queryRunner, event.query, statusRead);
          } catch (error) {
            this.fault(error, undefined);
          }
        };
        if (!answeredByServer(event.error) || !statusNeeded(event.queryRunner, event.query)) {
          settle(false);
          return undefined;
        }
        return onceAnswered(event.queryRunner, this.options.writeTimeoutMs, settle);
      }
      statementAnswered(event.queryRunner, event.rawResults, event.query, event.parameters);
      insertAnswered(event.queryRunner, event.query);
      const unknown = queryAnswered(event.queryRunner, event.query, event.rawResults);
      sentWrite(event.queryRunner, event.query, event.parameters, event.rawResults);
      // A write on a relation met for the first time (a view of an audited table?): followed once the catalog says what it is.
      if (unknown.length > 0)
        return lookUpRelations(event.queryRunner, unknown, this.options.writeTimeoutMs).then(() => {
          try {
            queryAnswered(event.queryRunner, event.query, event.rawResults, true);
          } catch (error) {
            this.fault(error, undefined);
          }
        });
    } catch (error) {
      this.fault(error, undefined);
    }
    return undefined;
  }

  /** Before the outer COMMIT, the `record()` rows of the transaction are looked up in it (see {@link confirmRecordedRows}). */
  async beforeTransactionCommit(event: TransactionCommitEvent): Promise<void> {
    try {
      await confirmRecordedRows(event.queryRunner, this.options.writeTimeoutMs);
    } catch (error) {
      this.fault(error, undefined);
    }
  }

  afterTransactionCommit(event: TransactionCommitEvent): void {
    try {
      transactionCommitted(event.queryRunner);
      unheardCommitted(event.queryRunner);
      transactionEnded(event.queryRunner);
      ownersForgotten(event.queryRunner);
    } catch (error) {
      this.fault(error, undefined);
    }
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    try {
      transactionRolledBack(event.queryRunner);
      unheardRolledBack(event.queryRunner);
      transactionEnded(event.queryRunner);
      ownersForgotten(event.queryRunner);
    } catch (error) {
      this.fault(error, undefined);
    }
  }

  private capture(op: EntityChangeOp, queryRunner: QueryRunner, source: ChangeSource): void {
    let rule: AuditedEntityRule | undefined;
    try {
      writeHeard(queryRunner, source.metadata);
      const criteria = byCriteria(op, source);
      // Taken for every event of a loaded row, audited or not: each takes its own statement's answer.
      const unwritten = !criteria && loadedRowUnwritten(queryRunner, op, source.metadata, source.databaseEntity as ObjectLiteral);
      rule = this.rules.get(source.metadata.target);
      const cascaded = cascadedWrites(this.cascades, op, source.metadata, source, queryRunner);
      const context = (rule || cascaded > 0) && currentAuditContext();
      if (!context) return;
      // A write PostgreSQL says wrote no row changed nothing (nor set off a key's action): by criteria or through a query
      // builder, or of a loaded row a trigger or a policy left as it was.
      if (criteria ? wroteNoRow(queryRunner, op) : unwritten) return;
      // Rows of audited entities the database writes by a foreign key's action: no event names them.
      if (cascaded > 0) stageOmitted(queryRunner, context, cascaded, this.budget);
      if (!rule) return;
      // Owners TypeORM wrote through the owner's list, which the entity does not hold; one that cannot be read is counted.
      const owners = writtenOwners(queryRunner, op, source);
      if (owners?.unseen) stageOmitted(queryRunner, context, owners.unseen, this.budget);
      const change = entityChange(op, rule, owners ? { ...source, owners } : source, this.isRedacted);
      if (!change) return;
      // By name only, here and when the row is normalized: a value never redacts another.
      stageChange(queryRunner, context, capturedChange(change, this.isRedacted, this.budget), this.budget);
    } catch (error) {
      this.fault(error, rule);
    }
  }

  private fault(error: unknown, rule: AuditedEntityRule | undefined): void {
    this.faultCount += 1;
    try {
      const context = currentAuditContext();
      if (context) ownerOf(context).omitted += 1;
      const { name, message } = (error ?? {}) as { name?: unknown; message?: unknown };
      this.console.emit(AUDIT_EVENTS.diffFailed, 'warn', {
        auditId: null,
        action: null,
        entityType: rule?.type ?? null,
        entityId: null,
        userId: null,
        error: { name: String(name), message: redactText(String(message ?? error), this.isRedacted).slice(0, 500) },
      });
    } catch {
      // Counted; nothing more can be said.
    }
  }
}

/** True for a change TypeORM reports without the row it wrote: by criteria, or through a query builder (an insert without its id). */
function byCriteria(op: EntityChangeOp, source: ChangeSource): boolean {
  return op === 'insert' ? source.entityId === undefined : source.databaseEntity === undefined;
}
