import { AuditConfigError } from '../audit.errors';

/**
 * An entity class, as TypeORM's `@Entity()` decorates it.
 *
 * @example
 * const audited: EntityClass[] = [Nda];
 * AuditModule.forRoot({ diffs: { entities: audited } });
 */
export type EntityClass = abstract new (...args: never[]) => object;

/**
 * The `diffs` option of `AuditModule.forRoot()`: which entities' changes are attached to audit
 * rows as before/after diffs, besides those marked with `@AuditedEntity()`, and which of their
 * properties are never written.
 *
 * @example
 * AuditModule.forRoot({ diffs: { entities: [Nda, 'Contract'], exclude: { Nda: ['updatedAt'] } } });
 */
export interface AuditDiffOptions {
  /** Entity classes, or entity names (TypeORM's `name`, the class name by default); the entities extending them are audited too. */
  entities?: (EntityClass | string)[];
  /** Per entity (by entity name or audit type): property paths or column names left out of its diffs. */
  exclude?: Record<string, string[]>;
}

/** {@link AuditDiffOptions} with defaults applied. */
export interface ResolvedDiffOptions {
  readonly entities: readonly (EntityClass | string)[];
  readonly exclude: Readonly<Record<string, readonly string[]>>;
}

/**
 * Validates the `diffs` option, naming the bad key (`diffs.entities`, `diffs.exclude.Nda`…).
 *
 * @example
 * resolveDiffOptions({ entities: ['Nda'] }).exclude; // {}
 */
export function resolveDiffOptions(input: unknown): ResolvedDiffOptions {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw AuditConfigError.invalidOption('diffs', 'an object { entities?, exclude? }', input);
  }
  const { entities = [], exclude = {}, ...rest } = input as AuditDiffOptions;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw AuditConfigError.unknownOption(`diffs.${unknown}`, ['entities', 'exclude']);
  const validName = (e: unknown) => typeof e === 'function' || (typeof e === 'string' && e.trim() !== '');
  if (!Array.isArray(entities) || !entities.every(validName)) {
    throw AuditConfigError.invalidOption('diffs.entities', 'an array of entity classes or entity names', entities);
  }
  if (exclude === null || typeof exclude !== 'object' || Array.isArray(exclude)) {
    throw AuditConfigError.invalidOption('diffs.exclude', 'an object of entity name → property names', exclude);
  }
  for (const [entity, columns] of Object.entries(exclude)) {
    if (!Array.isArray(columns) || !columns.every((c) => typeof c === 'string' && c.trim() !== '')) {
      throw AuditConfigError.invalidOption(`diffs.exclude.${entity}`, 'an array of property names', columns);
    }
  }
  return Object.freeze({ entities: [...entities], exclude: { ...exclude } });
}
