import { type EntityMetadata } from 'typeorm';
import { type ResolvedDiffOptions } from './diff-options';
import { auditedEntityOptions, classChain } from './audited-entity.decorator';

/** How one audited entity is written into diffs. */
export interface AuditedEntityRule {
  type: string;
  /** Property paths (and everything below them) and column names left out of every diff. */
  exclude: ReadonlySet<string>;
  /** The rules of the other audited entities of its DataSource, by target: a relation's id hides what the related entity excludes. */
  others?: ReadonlyMap<unknown, AuditedEntityRule>;
}

/**
 * The rule for an entity of a DataSource: from `@AuditedEntity()` on its class and from the
 * module's `diffs` option (named by class or entity name), or undefined when it is not audited.
 * An entity that extends an audited class, decorated or named in the option (a `@ChildEntity()`
 * writing into its parent's table), is audited too, under its own entity name unless a decorator
 * gives a type; it keeps the exclusions given to the classes it extends (by their decorators, and
 * by the option under their class names or types), adding its own.
 *
 * @example
 * const rule = auditedEntityRule(dataSource.getMetadata(Nda), { entities: [], exclude: { NDA: ['updatedAt'] } });
 */
export function auditedEntityRule(metadata: EntityMetadata, diffs: ResolvedDiffOptions): AuditedEntityRule | undefined {
  const decorated = auditedEntityOptions(metadata.target);
  const chain = classChain(metadata.target);
  const named = diffs.entities.some(
    (entity) => entity === metadata.target || entity === metadata.name || chain.some((at) => entity === at.target || entity === at.name),
  );
  if (!decorated && !named) return undefined;
  const type = decorated?.type ?? metadata.name;
  const exclude = new Set([...(decorated?.exclude ?? []), ...(diffs.exclude[metadata.name] ?? []), ...(diffs.exclude[type] ?? [])]);
  // What the module option excludes from an entity it excludes from the entities extending it (by class name or type).
  for (const { name, options } of chain.slice(1)) {
    for (const path of [...(diffs.exclude[name] ?? []), ...(options?.type === undefined ? [] : (diffs.exclude[options.type] ?? []))])
      exclude.add(path);
  }
  return { type, exclude };
}

/**
 * The audited entities of one DataSource's metadata, by entity target, for a lookup per event.
 *
 * @example
 * const rules = auditedEntityRules(dataSource.entityMetadatas, options.diffs);
 * rules.get(Nda)?.type; // 'NDA'
 */
export function auditedEntityRules(metadatas: readonly EntityMetadata[], diffs: ResolvedDiffOptions): Map<unknown, AuditedEntityRule> {
  const rules = new Map<unknown, AuditedEntityRule>();
  for (const metadata of metadatas) {
    const rule = auditedEntityRule(metadata, diffs);
    if (rule) rules.set(metadata.target, { ...rule, others: rules });
  }
  return rules;
}
