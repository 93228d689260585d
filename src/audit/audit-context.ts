import { AsyncLocalStorage } from 'node:async_hooks';
import { type EntityChanges } from './diffs/entity-change';
import { fitChanges, heldChange } from './diffs/cut-change';
import { FRAME_BYTES, markEntityChanges } from './diffs/entry-diffs';

/**
 * The scope an audit row is written for: one mutating HTTP request (opened by the interceptor), or
 * an {@link auditScope} around work outside HTTP. Entity changes committed inside it wait here
 * for the row. The handler of a request runs in an `attempt` of it, one each time the interceptor
 * has the request (an outer interceptor may retry it): an attempt joins its request while the
 * request is open.
 */
export interface AuditContext {
  readonly kind: 'request' | 'attempt' | 'scope';
  /** The context an {@link auditScope} opened inside a request or another scope joins, while that one is open. */
  readonly parent: AuditContext | undefined;
  /** The request's row is being made: from now on, a scope inside it keeps what it sees for its own rows. */
  closed: boolean;
  /** Set once a row the handler wrote itself with `AuditService.record()` has committed (PostgreSQL's answer decides). */
  recordedAtomically: boolean;
  /** An attempt an outer interceptor gave up on and retried: a `record()` row it commits stands for it alone, not for the request. */
  superseded: boolean;
  /**
   * An attempt whose handler an interceptor bound on its route (inside the audit interceptor) may
   * run again without the module seeing it: a `record()` row it commits may stand for an earlier
   * run, so it stands for nothing but itself and the request keeps its own row.
   */
  mayRunAgain: boolean;
  /** `record()` rows written in a transaction block TypeORM does not report: each answers, when asked, whether it committed. */
  unsettled: (() => Promise<boolean>)[] | undefined;
  /** Changes held in such blocks: before the changes are taken, each counts what its block holds if it ended unseen. */
  blocks: (() => void)[] | undefined;
  /** Committed entity changes (JSON-safe, redacted) not yet on a row; undefined until the first. */
  entities: unknown[] | undefined;
  /** Serialized size of `entities`, bounded by `maxEntryBytes` (see `heldChange()`). */
  bytes: number;
  /** Of `bytes`, those of changes held with their values cut. */
  cutBytes: number;
  /** The diffs' share the changes were held for: `entities` are fitted to it when taken. */
  limit: number;
  /** Changes left out: past the size cap, or lost to a capture error. */
  omitted: number;
}

/** A captured change, converted when it happened (later edits of the entity object do not alter it). */
export interface StagedChange {
  value: unknown;
  bytes: number;
  /** Held with its values cut, past the diffs' share. */
  cut?: boolean;
}

const storage = new AsyncLocalStorage<AuditContext>();

/**
 * A fresh context, for {@link runInAuditContext}; with a `parent`, it joins that one while it is open.
 *
 * @example
 * const context = newAuditContext('request');
 */
export function newAuditContext(kind: AuditContext['kind'], parent?: AuditContext): AuditContext {
  const context: AuditContext = {
    kind,
    parent,
    closed: false,
    recordedAtomically: false,
    superseded: false,
    mayRunAgain: false,
    unsettled: undefined,
    blocks: undefined,
    entities: undefined,
    bytes: 0,
    cutBytes: 0,
    limit: Infinity,
    omitted: 0,
  };
  // An attempt stands in for its request: closed when the request is, so that a scope opened in it
  // after the request's row is being made keeps what it sees for its own rows.
  if (kind === 'attempt' && parent) Object.defineProperty(context, 'closed', { get: () => parent.closed, set: () => undefined });
  return context;
}

/**
 * The context that owns what happens in `context` now: the open request or outermost scope it
 * joins, or itself once the request it joined has made its row (an attempt always its request).
 *
 * @example
 * ownerOf(context).omitted += 1;
 */
export function ownerOf(context: AuditContext): AuditContext {
  let owner = context;
  while (owner.parent && (owner.kind === 'attempt' || !owner.parent.closed)) owner = owner.parent;
  return owner;
}

/**
 * Notes that a `record()` row written in `context` has committed: it stands for the request (see
 * {@link recordedFor}).
 *
 * @example
 * markRecorded(context); // once PostgreSQL answered the row's COMMIT with COMMIT
 */
export function markRecorded(context: AuditContext): void {
  const owner = recordedFor(context);
  if (owner) owner.recordedAtomically = true;
}

/**
 * What a `record()` row written in `context` stands for: its {@link ownerOf owner}, but nothing
 * when it was written in an attempt of an open request that an outer interceptor has since
 * retried, or in one whose handler may run again unseen ({@link AuditContext.mayRunAgain}). Of a
 * retried request the last attempt counts: an earlier attempt's row, committed while a later
 * attempt runs or after, stands for that attempt alone.
 *
 * @example
 * const owner = recordedFor(context); // undefined: an abandoned attempt's row
 */
export function recordedFor(context: AuditContext): AuditContext | undefined {
  let owner = context;
  while (owner.parent && (owner.kind === 'attempt' || !owner.parent.closed)) {
    if (owner.superseded || owner.mayRunAgain) return undefined;
    owner = owner.parent;
  }
  return owner;
}

/**
 * Asks the `record()` rows whose commit was not known when written (see
 * {@link AuditContext.unsettled}) whether they committed, and marks `context` if one did. Never
 * rejects: a row that cannot answer stands for nothing.
 *
 * @example
 * if (context.unsettled) await settleRecorded(context); // before deciding the request's row
 */
export async function settleRecorded(context: AuditContext): Promise<void> {
  const unsettled = context.unsettled ?? [];
  context.unsettled = undefined;
  const answers = await Promise.all(unsettled.map((committed) => committed().catch(() => false)));
  if (answers.includes(true)) context.recordedAtomically = true;
}

/**
 * Runs `work` (the handler, when the interceptor subscribes to it) inside `context`, so that a
 * committed `AuditService.record()` row marks it and entity changes are collected into it.
 *
 * @example
 * const context = newAuditContext('request');
 * runInAuditContext(context, () => next.handle().subscribe(subscriber));
 */
export function runInAuditContext(context: AuditContext, work: () => void): void {
  storage.run(context, work);
}

/**
 * Runs `work` as one audit scope outside HTTP (a job, a queue consumer): changes of audited
 * entities committed inside it are attached to the next `AuditService.log()` (or `record()`)
 * called inside it. Inside an HTTP request the scope is the request's: its changes go to the
 * request's row, and a committed `record()` row inside it stands for the request; once the
 * request's row is made, work still running in the scope is a scope of its own again. Inside
 * another scope it joins that one.
 *
 * @example
 * await auditScope(async () => {
 *   await ndas.update({ expired: false }, { expired: true });
 *   await auditService.log({ action: 'ndas_expired' }); // carries changes.entities
 * });
 */
export function auditScope<T>(work: () => T): T {
  return storage.run(newAuditContext('scope', storage.getStore()), work);
}

/** The context of the code running now, if any. */
export function currentAuditContext(): AuditContext | undefined {
  return storage.getStore();
}

/** Adds committed changes to `context` (to its {@link ownerOf owner}), as far as `maxBytes` allows (values cut past it, see `heldChange()`); the rest are counted. */
export function addEntityChanges(joined: AuditContext, changes: readonly StagedChange[], maxBytes: number): void {
  const context = ownerOf(joined);
  for (const given of changes) {
    const change = heldChange(context, given, maxBytes);
    context.limit = Math.min(context.limit, maxBytes);
    if (!change) {
      context.omitted += 1;
      continue;
    }
    context.bytes += change.bytes;
    if (change.cut) context.cutBytes += change.bytes;
    (context.entities ??= []).push(change.value);
  }
}

/** Takes the changes waiting in `context` (in its {@link ownerOf owner}) for its row (they go on one row only), within the diffs' share. */
export function takeEntityChanges(joined: AuditContext | undefined): EntityChanges | undefined {
  const context = joined && ownerOf(joined);
  const blocks = context?.blocks;
  if (blocks) {
    context.blocks = undefined;
    for (const settle of blocks) settle();
  }
  if (!context || (context.entities === undefined && context.omitted === 0)) return undefined;
  // Held past their share with values cut: fitted to it, the largest values cut first.
  const { kept, omitted } =
    context.bytes > context.limit ? fitChanges(context.entities ?? [], context.limit, FRAME_BYTES) : { kept: context.entities, omitted: 0 };
  const taken: EntityChanges = { entities: (kept ?? []) as EntityChanges['entities'] };
  if (context.omitted + omitted > 0) taken.entitiesOmitted = context.omitted + omitted;
  context.entities = undefined;
  context.bytes = 0;
  context.cutBytes = 0;
  context.limit = Infinity;
  context.omitted = 0;
  return markEntityChanges(taken);
}
