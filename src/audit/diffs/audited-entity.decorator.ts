import { AUDITED_ENTITY_METADATA } from '../audit.constants';

/**
 * Options of {@link AuditedEntity}.
 *
 * @example
 * const options: AuditedEntityOptions = { type: 'NDA', exclude: ['updatedAt'] };
 * AuditedEntity(options)(Nda);
 */
export interface AuditedEntityOptions {
  /** The type written in `changes.entities[].type`. Default: the entity's TypeORM name (the class name). */
  type?: string;
  /**
   * Property paths (or column names) never written into a diff, at any depth: `['updatedAt',
   * 'profile.nickname', 'settings.theme']` (an embedded column, a key of a JSON column's value).
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
 * The options `@AuditedEntity()` stored on `target` (inherited by subclasses), if any.
 *
 * @example
 * auditedEntityOptions(Nda)?.type; // 'NDA'
 */
export function auditedEntityOptions(target: unknown): AuditedEntityOptions | undefined {
  if (typeof target !== 'function') return undefined;
  return Reflect.getMetadata(AUDITED_ENTITY_METADATA, target) as AuditedEntityOptions | undefined;
}
