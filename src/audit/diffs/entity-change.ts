/**
 * What happened to an audited entity row.
 *
 * @example
 * const removals = changes.entities.filter((change: EntityChange) => change.op === ('remove' satisfies EntityChangeOp));
 */
export type EntityChangeOp = 'insert' | 'update' | 'remove' | 'soft-remove' | 'recover';

/**
 * One change of an audited entity, as it appears in `changes.entities` of the request's audit row.
 *
 * - `fields` holds `[before, after]` for each property (by path: `profile.city`) or relation (by
 *   the related entity's id) that changed, when TypeORM knew the row's prior state: `save()`,
 *   `remove()`, `softRemove()`, `recover()`. An insert has `null` before (there was no row); a
 *   remove has `null` after. A value TypeORM did not load (`select: false`, a removed row's
 *   relations, an SQL expression) is `'unknown'`; a value written as it was is not listed.
 * - Redacted by name only: a property, id column or JSON key whose name is redacted is
 *   `'[REDACTED]'`; values never redact one another.
 * - Where TypeORM reports no prior state (`update()`, `delete()`, `softDelete()`, `restore()` by
 *   criteria, `insert()` and `upsert()`, query builders), the change has `before: 'unknown'`, the
 *   values written in `after` (none for a delete), and `id: null` when the row is not known either
 *   (an `insert()` gives its id). Old values are never guessed: an `upsert()` may have updated a row.
 *
 * @example
 * const change: EntityChange = { type: 'NDA', id: '0193…', op: 'update', fields: { title: ['Old', 'New'] } };
 */
export interface EntityChange {
  /** The entity's audit type: `@AuditedEntity({ type })`, or the entity's name. */
  type: string;
  /**
   * The primary key (an object of the key's columns when composite); null when TypeORM does not
   * say which row. A key column whose name is redacted (`token`) is `'[REDACTED]'`; one the
   * entity's rule excludes is `'[EXCLUDED]'`.
   */
  id: string | number | Record<string, unknown> | null;
  op: EntityChangeOp;
  /** `[before, after]` per property path (`title`, `profile.city`, a relation by its id); a secret one is `'[REDACTED]'`. */
  fields?: Record<string, [before: unknown, after: unknown] | string>;
  /** Present, as `'unknown'`, when TypeORM did not report the prior state. */
  before?: typeof UNKNOWN_BEFORE;
  /** The values set, when the prior state is unknown. */
  after?: Record<string, unknown>;
}

/**
 * The value of {@link EntityChange.before} when TypeORM reported no prior state, and of a value it did not load.
 *
 * @example
 * const guessed = change.before === UNKNOWN_BEFORE; // update() by criteria: TypeORM did not load the row
 */
export const UNKNOWN_BEFORE = 'unknown';

/**
 * What the audit row carries next to `changes.entities`.
 *
 * @example
 * const { entities, entitiesOmitted = 0 } = row.changes as EntityChanges;
 */
export interface EntityChanges {
  entities: EntityChange[];
  /**
   * Changes left out: past the size cap (`maxEntryBytes`), not captured because of an error, or
   * written by a statement TypeORM sent no entity event for (`listeners: false`, `clear()`, raw SQL).
   */
  entitiesOmitted?: number;
}
