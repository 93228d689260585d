import { currentAuditContext, ownerOf, takeEntityChanges } from '../audit-context';
import { type AuditEntry } from '../audit-entry';
import { type EntityChanges } from './entity-change';
import { markEntityChanges } from './entry-diffs';

/**
 * The entry with the entity changes it is the row for: inside an `auditScope()`, the changes
 * committed in that scope; for `record()`, also `fromTransaction`, the uncommitted changes of the
 * manager's transaction, which commit or roll back with the row. They join the entry's own
 * `changes` (an object; any other value is kept under `value`). Never throws: on any fault the
 * entry is returned as it was.
 *
 * @example
 * auditService.log(withEntityChanges({ action: 'ndas_expired' }));
 */
export function withEntityChanges(entry: AuditEntry, fromTransaction?: EntityChanges): AuditEntry {
  try {
    const current = currentAuditContext();
    // A scope inside a request leaves its changes to the request's row.
    const context = current && ownerOf(current);
    const fromScope = context?.kind === 'scope' ? takeEntityChanges(context) : undefined;
    if (!fromScope && !fromTransaction) return entry;
    const given: unknown = entry.changes;
    const base = given === undefined || given === null ? {} : isPlainObject(given) ? given : { value: given };
    return { ...entry, changes: { ...base, ...merge(fromScope, fromTransaction) } };
  } catch {
    return entry;
  }
}

function merge(a: EntityChanges | undefined, b: EntityChanges | undefined): EntityChanges {
  const omitted = (a?.entitiesOmitted ?? 0) + (b?.entitiesOmitted ?? 0);
  const merged: EntityChanges = { entities: [...(a?.entities ?? []), ...(b?.entities ?? [])] };
  if (omitted > 0) merged.entitiesOmitted = omitted;
  return markEntityChanges(merged);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
