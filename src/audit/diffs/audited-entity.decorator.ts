import { AUDITED_ENTITY_METADATA } from '../audit.constants';

/**
 * Options of {@link AuditedEntity}.
 *
 * @example
 * const options: AuditedEntityOptions = { type: 'NDA', exclude: ['updatedAt'] };
 * AuditedEntity(options)(Nda);
 */
export interface AuditedEntityOptions {
  /** The type written in `changes.entities[].type`. Default: that of the nearest audited class it extends, else the entity's TypeORM name (the class name). */
  type?: string;
  /**
   * Property paths (or column names) never written into a diff, at any depth: `['updatedAt',
   * 'profile.nickname', 'settings.theme']` (an embedded column, a key of a JSON column's value).
   * Added to those of the audited classes the entity extends, which it keeps.
   */
  exclude?: string[];
}

/**
 * Marks a TypeORM entity whose changes (save, insert, update, remove, soft-remove, recover) are
 * attached as field-level diffs to the audit row of the request, or `auditScope()`, they happen in.
 *
 * @example
 * import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
 *
 * @AuditedEntity({ type: 'NDA', exclude: ['updatedAt'] })
 * @Entity()
 * class Nda {
 *   @PrimaryGeneratedColumn('uuid') id!: string;
 *   @Column() title!: string;
 *   @Column() updatedAt!: Date;
 * }
 */
export function AuditedEntity(options: AuditedEntityOptions = {}): ClassDecorator {
  return (target) => {
    Reflect.defineMetadata(AUDITED_ENTITY_METADATA, { ...options }, target);
  };
}

/**
 * The options `@AuditedEntity()` gives `target`, merged along its class chain: the nearest
 * decorated class's `type` (a subclass without a decorator of its own is its parent's type), and
 * the exclusions of every decorated class in the chain, so a subclass can add exclusions, never
 * drop those of the entity it extends. Undefined when no class in the chain is decorated.
 *
 * @example
 * auditedEntityOptions(Nda)?.type; // 'NDA'
 * auditedEntityOptions(Employee); // { type: 'Employee', exclude: ['team', 'salary'] } (`Person` excludes `salary`)
 */
export function auditedEntityOptions(target: unknown): AuditedEntityOptions | undefined {
  let merged: AuditedEntityOptions | undefined;
  for (const { options } of classChain(target)) {
    if (!options) continue;
    const into: AuditedEntityOptions = (merged ??= {});
    into.type ??= options.type;
    for (const path of options.exclude ?? []) if (!into.exclude?.includes(path)) (into.exclude ??= []).push(path);
  }
  return merged;
}

/**
 * `target` and the classes it extends, nearest first: each class, its name and the options its
 * own `@AuditedEntity()` gave it, if any.
 *
 * @example
 * classChain(Employee).map(({ name }) => name); // ['Employee', 'Person']
 */
export function classChain(target: unknown): { target: unknown; name: string; options?: AuditedEntityOptions }[] {
  const chain: { target: unknown; name: string; options?: AuditedEntityOptions }[] = [];
  // A class chain is short; the bound only guards against a malformed prototype chain.
  for (let at = target, hops = 0; typeof at === 'function' && at !== Function.prototype && hops < 64; hops += 1) {
    const options = Reflect.getOwnMetadata(AUDITED_ENTITY_METADATA, at) as AuditedEntityOptions | undefined;
    chain.push({ target: at, name: at.name, options });
    at = Object.getPrototypeOf(at) as unknown;
  }
  return chain;
}
