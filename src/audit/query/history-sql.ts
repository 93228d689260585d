import { createHash } from 'node:crypto';
import { literal } from '../audit-insert-sql';
import { OTHER_ENTITY_REFS_FUNCTION } from '../../../migrations/1767200000000-AuditOtherEntityRefs';
import { canonicalEntityId, legacyEntityIdSpellings } from '../entity-id';
import { type AuditCursorKey } from './audit-cursor';
import { PAGE_COLUMNS, type PreparedRead } from './audit-query.sql';

const DAY_US = 86_400_000_000n;
const ORDER = 'ORDER BY occurred_at DESC, id DESC';

/**
 * How `changes.entities` names an entity, as `@>` takes it: its type with its id as text, and as
 * a number when the id is the text of a whole number (a numeric key is stored as a JSON number);
 * null (`@>` matches nothing, no index is read) for any other id.
 *
 * @example
 * entityRefs('Contract', '42'); // ['[{"type":"Contract","id":"42"}]', '[{"type":"Contract","id":42}]']
 */
export function entityRefs(entityType: string, entityId: string): [string, string | null] {
  const asText = JSON.stringify([{ type: entityType, id: entityId }]);
  // A JSON number JavaScript wrote: whole, and read back as the same digits (a safe integer).
  const numeric = /^-?(0|[1-9][0-9]*)$/.test(entityId) && Number.isSafeInteger(Number(entityId));
  return [asText, numeric ? JSON.stringify([{ type: entityType, id: Number(entityId) }]) : null];
}

/**
 * One page of an entity's history, newest first (`limit + 1` rows, as a search's page): the rows
 * about it (`entity_type`, `entity_id`), and the rows about another entity whose
 * `changes.entities` holds a change of it (one transaction that changed both). The entity's rows
 * are read off `audit_log_entity_time_idx`, newest first and bounded by the page; the others
 * through the GIN index `audit_log_other_entity_refs_idx` (rows with `changes.entities` only, keyed
 * by the type and id of the entities each names besides its own), all of them past the cursor, then sorted: a page
 * costs the two lookups plus the sort of the entity's changes on other rows, whatever the table's
 * size or the length of the entity's own history. A UUID id is looked up canonical (lower
 * case), as given, and in capitals, as erasure does: `changes.entities` keeps a key as the entity's
 * table holds it, and an earlier version stored the id as the caller spelled it. Each spelling of
 * the entity's own rows is one more bounded read of the time index.
 * Both the literal SQL and the prepared statement (values as `$n`) are given, as the reader takes them.
 *
 * @example
 * const { select, prepared } = historyReads('"public"."audit_log"', 'Contract', '42', undefined, 50);
 * prepared.text; // 'SELECT * FROM ((SELECT … WHERE entity_type = $1::text AND entity_id = $2::text …'
 */
export function historyReads(
  table: string,
  entityType: string,
  entityId: string,
  after: AuditCursorKey | undefined,
  limit: number,
): { select: string; prepared: PreparedRead } {
  const select = historySql(table, entityType, entityId, after, limit, (value) => value);
  const args: string[] = [];
  const text = historySql(table, entityType, entityId, after, limit, (value) => {
    args.push(value);
    return `$${args.length}`;
  });
  return { select, prepared: { name: `audit_history_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`, text, args } };
}

/** The history's SELECT, each value (an SQL literal) placed by `param`. */
function historySql(
  table: string,
  entityType: string,
  entityId: string,
  after: AuditCursorKey | undefined,
  limit: number,
  param: (value: string) => string,
): string {
  const type = `${param(literal(entityType))}::text`;
  const spellings = [canonicalEntityId(entityId), ...legacyEntityIdSpellings(entityId)];
  const ids = spellings.map((spelling) => `${param(literal(spelling))}::text`);
  // A null ref (no numeric form) is kept as NULL: the statement's text depends on the number of spellings only.
  // The type and id of the row's entities besides its own (`AuditOtherEntityRefs1767200000000`), in the table's schema.
  const others = `${table.replace(/(?:"(?:[^"]|"")*"|[^."]+)$/, `"${OTHER_ENTITY_REFS_FUNCTION}"`)}(changes -> 'entities', entity_type, entity_id)`;
  const refs = spellings.flatMap((spelling) => entityRefs(entityType, spelling)).map((ref) => `${others} @> ${param(literal(ref))}::jsonb`);
  let cursor = '';
  if (after) {
    const instant =
      typeof after.occurredUs === 'bigint'
        ? `((timestamp 'epoch' + ${param(String(after.occurredUs / DAY_US))}::bigint * interval '1 day' + ${param(String(after.occurredUs % DAY_US))}::bigint * interval '1 microsecond') AT TIME ZONE 'UTC')`
        : `${param(literal(after.occurredUs))}::timestamptz`;
    cursor = ` AND (occurred_at, id) < (${instant}, ${param(literal(after.id))}::uuid)`;
  }
  const n = `${param(String(limit + 1))}::integer`;
  // `changes ? 'entities'` is the GIN index's predicate; its key holds no row's own entity, and the
  // second part leaves out the rows of the entity's other spellings: the first part reads them all. Its `OFFSET 0` keeps its ORDER BY and LIMIT outside: a generic plan
  // (a prepared statement's) would otherwise walk the time index newest first, filtering every row.
  const own = ids.map(
    (id) => `(SELECT ${PAGE_COLUMNS} FROM ${table} WHERE entity_type = ${type} AND entity_id = ${id}${cursor} ${ORDER} LIMIT ${n})`,
  );
  const notOwn = ids.map((id) => ` AND (entity_type, entity_id) IS DISTINCT FROM (${type}, ${id})`).join('');
  return (
    `SELECT * FROM (${own.join(' UNION ALL ')}` +
    ` UNION ALL (SELECT * FROM (SELECT ${PAGE_COLUMNS} FROM ${table} WHERE changes ? 'entities' AND (${refs.join(' OR ')})` +
    `${notOwn}${cursor} OFFSET 0) AS o ${ORDER} LIMIT ${n})) AS h ${ORDER} LIMIT ${n}`
  );
}
