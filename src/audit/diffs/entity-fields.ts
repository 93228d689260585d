import { type EntityMetadata, type ObjectLiteral } from 'typeorm';
import { type ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import { type RelationMetadata } from 'typeorm/metadata/RelationMetadata';
import { REDACTED } from '../redaction';
import { type AuditedEntityRule } from './audited-entities';
import { type StoredAlike, storedAlike } from './stored-form';

/**
 * What a diff writes in place of a key column (of the entity's id, or of a relation's id) that
 * the entity's rule excludes: the property never appears, not even as a key.
 *
 * @example
 * change.id; // '[EXCLUDED]' for an entity keyed by an excluded `email`; { tenant: 'acme', email: '[EXCLUDED]' } when composite
 */
export const EXCLUDED_KEY = '[EXCLUDED]';

/** One property a diff can report: a column, or a relation shown by the related entity's id. */
export interface DiffField {
  /** The property path, the key in `fields` and `after`: `title`, `profile.city`, `owner`. */
  path: string;
  /** Written as `[REDACTED]`: its name, its column's name or (for an id) the related key's name is redacted. */
  secret: boolean;
  /** The columns that carry it, as TypeORM names them in `updatedColumns`. */
  columns: readonly ColumnMetadata[];
  /** The relation, as TypeORM names it in `updatedRelations`. */
  relation?: RelationMetadata;
  /** Its value in `entity`; undefined when `entity` does not hold it (not loaded, not set). */
  read(entity: ObjectLiteral): unknown;
  /** For a relation whose id has hidden key columns: the id as written, those columns `[EXCLUDED]` or `[REDACTED]`. */
  conceal?(value: unknown): unknown;
  /** True when two values are stored alike (`'12.50'` as loaded and `12.5` as set in a `numeric`); absent where that is not known ({@link storedAlike}). */
  storedAlike?(a: unknown, b: unknown): boolean;
}

/** The last fields made for an entity's metadata, with the rule and redactor they were made for. */
const made = new WeakMap<
  EntityMetadata,
  { rule: AuditedEntityRule; exclude: ReadonlySet<string>; isRedacted: (name: string) => boolean; fields: DiffField[] }
>();

/**
 * The properties of an entity a diff may report, excluded ones left out: every column (embedded
 * ones by their path) and every relation that holds a join column (many-to-one, owning
 * one-to-one), whose value is the related entity's id. Made once per entity, rule and redactor.
 *
 * @example
 * diffFields(metadata, { type: 'Deal', exclude: new Set(['profile.nickname']) }, compileRedactor(['pin'])).map((f) => f.path);
 * // ['id', 'title', 'profile.city', 'profile.pin', 'owner']
 */
export function diffFields(metadata: EntityMetadata, rule: AuditedEntityRule, isRedacted: (name: string) => boolean): DiffField[] {
  const known = made.get(metadata);
  if (known?.rule === rule && known.exclude === rule.exclude && known.isRedacted === isRedacted) return known.fields;
  const fields = makeFields(metadata, rule, isRedacted);
  made.set(metadata, { rule, exclude: rule.exclude, isRedacted, fields });
  return fields;
}

function makeFields(metadata: EntityMetadata, rule: AuditedEntityRule, isRedacted: (name: string) => boolean): DiffField[] {
  const fields: DiffField[] = [];
  for (const column of metadata.columns) {
    if (column.isVirtual || isOwnJoinColumn(column)) continue;
    if (isExcludedColumn(column, rule.exclude)) continue;
    // A foreign key column shows what it refers to: hidden when that key is secret or excluded.
    const hidden = hiddenKey(column, rule, isRedacted);
    fields.push({
      path: column.propertyPath,
      secret: hidden === REDACTED,
      columns: [column],
      read: (entity) => column.getEntityValue(entity) as unknown,
      conceal: hidden === EXCLUDED_KEY ? (value) => (value === null || value === undefined ? value : EXCLUDED_KEY) : undefined,
      storedAlike: known(storedAlike(column)),
    });
  }
  for (const relation of metadata.relationsWithJoinColumns) {
    const joins = relation.joinColumns;
    // Excluded with the columns that hold it: by its path, a column's name, or every column's own property.
    if (
      isExcluded(
        rule.exclude,
        relation.propertyPath,
        joins.map((join) => join.databaseName),
      ) ||
      (joins.length > 0 && joins.every((join) => isExcluded(rule.exclude, join.propertyPath)))
    )
      continue;
    const secret = isRedacted(relation.propertyPath) || (joins.length === 1 && isSecretColumn(joins[0], isRedacted));
    const conceal = secret ? undefined : concealer(relation, rule, isRedacted);
    fields.push({
      path: relation.propertyPath,
      secret,
      columns: joins,
      relation,
      read: (entity) => relationId(relation, entity),
      conceal,
      storedAlike: relationAlike(relation),
    });
  }
  return fields;
}

/** True only when two values are known to be stored alike. */
function known(alike: StoredAlike | undefined): DiffField['storedAlike'] {
  return alike && ((a, b) => alike(a, b) === true);
}

/**
 * Two ids of a related entity compared as the join columns store them (a `bigint` key loaded as
 * `'7'` and set as `7`, a `uuid` in capitals); a composite id key by key.
 */
function relationAlike(relation: RelationMetadata): DiffField['storedAlike'] {
  const joins = relation.joinColumns;
  const alike = joins.map((join) => storedAlike(join));
  if (alike.length === 0 || alike.some((same) => same === undefined)) return undefined;
  if (joins.length === 1) return known(alike[0]);
  const keys = joins.map((join, at) => [relationKeyName(join), alike[at]!] as const);
  return (a, b) => {
    if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
    return keys.every(([name, same]) => same((a as Record<string, unknown>)[name], (b as Record<string, unknown>)[name]) === true);
  };
}

/**
 * What a diff writes in place of a key column's value, or undefined when it is shown: `[EXCLUDED]`
 * when the entity's rule excludes it, or (for a foreign key, through each key it refers to in turn)
 * the rule of the audited entity that key belongs to excludes it; `[REDACTED]` when it, or a key it
 * refers to, is a secret by name ({@link isSecretColumn}).
 *
 * @example
 * hiddenKey(metadata.findColumnWithPropertyPath('email')!, { type: 'Subscriber', exclude: new Set(['email']) }, isRedacted); // '[EXCLUDED]'
 */
export function hiddenKey(column: ColumnMetadata, rule: AuditedEntityRule, isRedacted: (name: string) => boolean): string | undefined {
  if (isExcludedColumn(column, rule.exclude)) return EXCLUDED_KEY;
  let secret = isRedacted(column.propertyPath) || isRedacted(column.databaseName);
  // A chain of foreign keys is short; the bound only guards against a malformed one.
  for (let key = column.referencedColumn, hops = 0; key && hops < 8; key = key.referencedColumn, hops += 1) {
    const related = rule.others?.get(key.entityMetadata.target);
    if (related && isExcludedColumn(key, related.exclude)) return EXCLUDED_KEY;
    secret ||= isRedacted(key.propertyPath) || isRedacted(key.databaseName);
  }
  return secret ? REDACTED : undefined;
}

/** The relation's id as written, each hidden key column replaced; undefined when none is hidden. */
function concealer(relation: RelationMetadata, rule: AuditedEntityRule, isRedacted: (name: string) => boolean): DiffField['conceal'] {
  const joins = relation.joinColumns;
  const hidden = joins.map((join) => hiddenKey(join, rule, isRedacted));
  if (hidden.every((mark) => mark === undefined)) return undefined;
  if (joins.length === 1) return (id) => (id === null || id === undefined ? id : hidden[0]);
  return (id) => {
    if (id === null || typeof id !== 'object') return id;
    const shown: Record<string, unknown> = { ...(id as Record<string, unknown>) };
    joins.forEach((join, at) => {
      const name = relationKeyName(join);
      if (hidden[at] !== undefined && shown[name] !== undefined && shown[name] !== null) shown[name] = hidden[at];
    });
    return shown;
  };
}

/**
 * True when a column's value is a secret by name: its property path, its column name, or, for a
 * foreign key, the name of the key it refers to (`device` → `Device.apiKey`).
 *
 * @example
 * isSecretColumn(metadata.findColumnWithPropertyPath('token')!, compileRedactor(['token'])); // true
 */
export function isSecretColumn(column: ColumnMetadata, isRedacted: (name: string) => boolean): boolean {
  if (isRedacted(column.propertyPath) || isRedacted(column.databaseName)) return true;
  const referenced = column.referencedColumn;
  return referenced !== undefined && (isRedacted(referenced.propertyPath) || isRedacted(referenced.databaseName));
}

/**
 * True when `path`, a property path above it (`profile` above `profile.city`), or one of its
 * column names is excluded.
 *
 * @example
 * isExcluded(new Set(['profile']), 'profile.city', ['profileCity']); // true
 */
export function isExcluded(exclude: ReadonlySet<string>, path: string, columnNames: readonly string[] = []): boolean {
  if (exclude.size === 0) return false;
  if (columnNames.some((name) => exclude.has(name))) return true;
  for (let end = path.indexOf('.'); end >= 0; end = path.indexOf('.', end + 1)) {
    if (exclude.has(path.slice(0, end))) return true;
  }
  return exclude.has(path);
}

/**
 * True when `exclude` leaves out a column: by its property path (or one above it) or its name, or
 * as a join column of a relation excluded by its path, since both hold one value in the row
 * (`@Column() reporterId` beside `@ManyToOne() @JoinColumn({ name: 'reporterId' }) reporter`).
 *
 * @example
 * isExcludedColumn(metadata.findColumnWithPropertyPath('reporterId')!, new Set(['reporter'])); // true
 */
export function isExcludedColumn(column: ColumnMetadata, exclude: ReadonlySet<string>): boolean {
  if (exclude.size === 0) return false;
  if (isExcluded(exclude, column.propertyPath, [column.databaseName])) return true;
  if (!column.relationMetadata) return false;
  return column.entityMetadata.relationsWithJoinColumns.some(
    (relation) =>
      isExcluded(exclude, relation.propertyPath) && relation.joinColumns.some((join) => join.databaseName === column.databaseName),
  );
}

/** A join column TypeORM made for a relation (it bears the relation's name): reported as the relation. */
function isOwnJoinColumn(column: ColumnMetadata): boolean {
  return column.relationMetadata !== undefined && column.propertyName === column.relationMetadata.propertyName;
}

/** The related entity's id: its one key column's value, or an object of them; null when unset, undefined when not held. */
function relationId(relation: RelationMetadata, entity: ObjectLiteral): unknown {
  const related = relation.getEntityValue(entity);
  if (related === undefined || related === null) return related;
  const joins = relation.joinColumns;
  if (joins.length === 1) return joins[0].getEntityValue(entity) as unknown;
  const id: Record<string, unknown> = {};
  for (const join of joins) id[relationKeyName(join)] = join.getEntityValue(entity);
  return id;
}

/**
 * A join column's name in a composite relation id: the related key's property path.
 *
 * @example
 * relationKeyName(relation.joinColumns[0]); // 'tenant' for the join column `ownerTenant`
 */
export function relationKeyName(join: ColumnMetadata): string {
  return join.referencedColumn?.propertyPath ?? join.propertyPath;
}
