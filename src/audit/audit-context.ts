import { AsyncLocalStorage } from 'node:async_hooks';
import { type EntityChanges } from './diffs/entity-change';
import { fitChanges, heldChange } from './diffs/cut-change';
import { FRAME_BYTES, markEntityChanges } from './diffs/entry-diffs';

/**
 * The scope an audit row is written for: one mutating HTTP request (opened by the interceptor), or
 * an {@link auditScope} around work outside HTTP. Entity changes committed inside it wait here
 * for the row.
 */
export interface AuditContext {
  readonly kind: 'request' | 'scope';
  /** Set once a row the handler wrote itself with `AuditService.record()` has committed (PostgreSQL's answer decides). */
  recordedAtomically: boolean;
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
 * A fresh context, for {@link runInAuditContext}.
 *
 * @example
 * const context = newAuditContext('request');
 */
export function newAuditContext(kind: AuditContext['kind']): AuditContext {
  return { kind, recordedAtomically: false, entities: undefined, bytes: 0, cutBytes: 0, limit: Infinity, omitted: 0 };
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
 * called inside it. Inside an HTTP request they go to the request's row instead.
 *
 * @example
 * await auditScope(async () => {
 *   await ndas.update({ expired: false }, { expired: true });
 *   await auditService.log({ action: 'ndas_expired' }); // carries changes.entities
 * });
 */
export function auditScope<T>(work: () => T): T {
  return storage.run(newAuditContext('scope'), work);
}

/** The context of the code running now, if any. */
export function currentAuditContext(): AuditContext | undefined {
  return storage.getStore();
}

/** Adds committed changes to `context`, as far as `maxBytes` allows (values cut past it, see `heldChange()`); the rest are counted. */
export function addEntityChanges(context: AuditContext, changes: readonly StagedChange[], maxBytes: number): void {
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

/** Takes the changes waiting in `context` for its row (they go on one row only), within the diffs' share. */
export function takeEntityChanges(context: AuditContext | undefined): EntityChanges | undefined {
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
