import { fitChanges } from './cut-change';
import { type EntityChanges } from './entity-change';

/** Gives back the object it is constructed with: a subclass's private field is then added to that object. */
class Stamp {
  constructor(target: object) {
    return target as Stamp;
  }
}

/**
 * The `entities` lists the module made for a row: only they take the diffs' share of an entry,
 * never a caller's look-alike. A private field added to the list, which no caller can add, read,
 * copy or fake (a `WeakSet` cost each request an entry in a weak table, which the garbage
 * collector visits).
 */
class Made extends Stamp {
  #made = true;

  static mark(list: object): void {
    if (!Made.has(list)) new Made(list);
  }

  static has(list: object): boolean {
    return #made in list;
  }
}

/**
 * Characters of `{"entities":[],"entitiesOmitted":…}` around the changes, a count of up to 16 digits included.
 *
 * @example
 * fitChanges(entities, maxBytes, FRAME_BYTES); // the changes within maxBytes once framed
 */
export const FRAME_BYTES = 48;

/**
 * An entry's entity diffs (`entities`, `entitiesOmitted`) as `normalize()` takes them apart from
 * the rest of `changes`.
 */
export type DiffsPart = Record<string, unknown> & { entities: unknown };

/**
 * Marks `changes.entities` as the module's own list of committed changes for a row, so that
 * `normalize()` gives it the diffs' share of `maxEntryBytes` apart from the rest of `changes`.
 *
 * @example
 * const taken = markEntityChanges({ entities: [change] }); // as takeEntityChanges() returns it
 */
export function markEntityChanges<T extends EntityChanges | undefined>(changes: T): T {
  if (changes) Made.mark(changes.entities);
  return changes;
}

/**
 * An entry's `changes` parted into the module's entity diffs and the rest (the request's body, a
 * caller's own values), each to be converted and cut within its own share of `maxEntryBytes`.
 * A value without the module's diffs is all rest. Never throws.
 *
 * @example
 * partChanges({ body: { title: 'x' }, entities: taken.entities }); // { rest: { body: { title: 'x' } }, diffs: { entities: [...] } }
 */
export function partChanges(changes: unknown): { rest: unknown; diffs: DiffsPart | undefined } {
  try {
    if (changes === null || typeof changes !== 'object' || Array.isArray(changes)) return { rest: changes, diffs: undefined };
    const entities = Object.getOwnPropertyDescriptor(changes, 'entities')?.value as unknown;
    if (entities === null || typeof entities !== 'object' || !Made.has(entities)) return { rest: changes, diffs: undefined };
    return diffsOf(changes);
  } catch {
    return { rest: changes, diffs: undefined };
  }
}

/**
 * `changes` made of the rest and the diffs again, the diffs last (as the interceptor writes them:
 * `{ body, entities, entitiesOmitted }`); the rest alone when there are no diffs.
 *
 * @example
 * joinDiffs({ body: { title: 'x' } }, { entities: [] }); // { body: { title: 'x' }, entities: [] }
 */
export function joinDiffs(rest: unknown, diffs: DiffsPart | undefined): unknown {
  if (!diffs) return rest;
  if (rest === null || rest === undefined) return { ...diffs };
  return typeof rest === 'object' && !Array.isArray(rest) ? { ...rest, ...diffs } : { value: rest, ...diffs };
}

/**
 * The diffs of a joined `changes` (after `normalize()` converted it), apart from the rest again.
 *
 * @example
 * diffsOf({ body: {}, entities: [] }); // { rest: { body: {} }, diffs: { entities: [] } }
 */
export function diffsOf(changes: unknown): { rest: unknown; diffs: DiffsPart | undefined } {
  if (changes === null || typeof changes !== 'object' || !Object.hasOwn(changes, 'entities')) return { rest: changes, diffs: undefined };
  const { entities, entitiesOmitted, ...rest } = changes as Record<string, unknown>;
  return { rest, diffs: entitiesOmitted === undefined ? { entities } : { entities, entitiesOmitted } };
}

/**
 * The serialized size of a diffs part in bytes.
 *
 * @example
 * diffsBytes({ entities: [] }); // 15
 */
export function diffsBytes(diffs: DiffsPart | undefined): number {
  return diffs ? Buffer.byteLength(JSON.stringify(diffs)) : 0;
}

/**
 * The diffs within `maxBytes` as JSON: the largest values among the changes (long ids too) cut
 * first (marked with their size), so that each change keeps its entity, op and field names; only
 * when even those pass `maxBytes`, changes left out, the largest first, and counted in `entitiesOmitted`
 * (the diffs' own marker). The same part when it fits.
 *
 * @example
 * fitDiffs({ entities: [big, small] }, 1024); // { entities: [big with its values cut, small] } when that fits 1 KiB
 */
export function fitDiffs(diffs: DiffsPart, maxBytes: number): DiffsPart {
  if (diffsBytes(diffs) <= maxBytes) return diffs;
  const entities = Array.isArray(diffs.entities) ? (diffs.entities as unknown[]) : [];
  const omitted = typeof diffs.entitiesOmitted === 'number' ? diffs.entitiesOmitted : 0;
  const { kept, omitted: left } = fitChanges(entities, maxBytes, FRAME_BYTES);
  return omitted + left > 0 ? { entities: kept, entitiesOmitted: omitted + left } : { entities: kept };
}
