import { createHash } from 'node:crypto';
import { literal } from '../audit-insert-sql';
import { AuditLog } from '../audit-log.entity';
import { erasedBy, revealPayloads } from '../privacy/personal-reveal';
import { type AuditCursorKey, cursorInstantSql } from './audit-cursor';
import { type CheckedSearch } from './audit-query.input';
import { type AuditTrailRow } from './audit-query.types';
import { ROW_SEAL_COLUMNS, ROW_SEAL_FROM } from './audit-seal-status';

const FILTER_COLUMNS = {
  userId: 'user_id',
  action: 'action',
  entityType: 'entity_type',
  entityId: 'entity_id',
  outcome: 'outcome',
} as const;

/**
 * A timestamp column as ISO 8601 text in UTC, to the millisecond: years 1 to 9999 as usual
 * (`2026-11-28T09:00:00.000Z`), other years expanded with a sign (`+010000-01-01T00:00:00.000Z`,
 * `-000043-03-15T12:00:00.000Z` for 44 BC, as `Date#toJSON` spells them), and `infinity` /
 * `-infinity` as PostgreSQL does.
 */
const legible = (column: string) => {
  const utc = `(${column} AT TIME ZONE 'UTC')`;
  const year = `extract(year FROM ${utc})::int`;
  // PostgreSQL counts 1 BC as -1; ISO 8601 (and Date) as 0.
  const isoYear = `(${year} + (${year} < 0)::int)`;
  return (
    `CASE WHEN ${column} >= '0001-01-01 00:00:00+00' AND ${column} < '10000-01-01 00:00:00+00' ` +
    `THEN to_char(${utc}, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') ` +
    `WHEN isfinite(${column}) THEN CASE WHEN ${isoYear} < 0 THEN '-' ELSE '+' END || lpad(abs(${isoYear})::text, 6, '0') || ` +
    `to_char(${utc}, '-MM-DD"T"HH24:MI:SS.MS"Z"') ELSE ${column}::text END`
  );
};

/**
 * A timestamp column as the text of its microseconds since the epoch, exact over PostgreSQL's
 * whole range (days and time of day apart: `extract(epoch …)` rounds near year 294276), or
 * `infinity` / `-infinity`.
 */
const microsecondsText = (column: string) => {
  const utc = `(${column} AT TIME ZONE 'UTC')`;
  return (
    `CASE WHEN isfinite(${column}) THEN (((${utc})::date - date '1970-01-01')::numeric * 86400000000 + ` +
    `round(extract(epoch FROM (${utc})::time) * 1000000))::text ELSE ${column}::text END`
  );
};

/**
 * The columns of a page, with the row's key to the microsecond for its cursor (text: past a
 * 64-bit integer near the end of PostgreSQL's range, or `infinity`), and the timestamps as
 * legible text for those a `Date` cannot hold.
 *
 * @example
 * const select = `SELECT ${PAGE_COLUMNS} FROM audit_log WHERE entity_type = 'NDA'`;
 */
export const PAGE_COLUMNS = `id, occurred_at, action, entity_type, entity_id, user_id, outcome, ip, user_agent, request_id, changes, metadata,
  recorded_at, personal, commitments, ${microsecondsText('occurred_at')} AS occurred_us, ${legible('occurred_at')} AS occurred_text,
  ${legible('recorded_at')} AS recorded_text`;

/** The columns of an export, as text: JSON and timestamps are written out as PostgreSQL spells them, never parsed. */
const EXPORT_COLUMNS = `id::text AS id, ${legible('occurred_at')} AS occurred_at, action, entity_type, entity_id, user_id, outcome, ip,
  user_agent, request_id, changes::text AS changes, metadata::text AS metadata, ${legible('recorded_at')} AS recorded_at, personal,
  commitments`;

/** The columns of an export whose length varies, as text: what a row's weight adds up. */
const EXPORT_WEIGHED = [
  'changes::text',
  'metadata::text',
  'personal::text',
  'commitments::text',
  'action',
  'entity_type',
  'entity_id',
].concat(['user_id', 'ip', 'user_agent', 'request_id']);

/** A row of a page as `pg` returns it. */
export interface PageRow {
  id: string;
  /** A `Date`, or what `pg` makes of a timestamp a `Date` cannot hold (`Infinity`, an invalid `Date`). */
  occurred_at: Date | number;
  action: string;
  entity_type: string | null;
  entity_id: string | null;
  user_id: string | null;
  outcome: AuditLog['outcome'];
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  changes: unknown;
  metadata: unknown;
  recorded_at: Date | number;
  /** Personal values kept apart, or the erased marker (docs/PRIVACY.md); null for rows written without the `privacy` option. */
  personal: string | null;
  commitments: string | null;
  occurred_us: string;
  occurred_text: string;
  recorded_text: string;
}

/**
 * A row of an export: every column text (or null), JSON columns as JSON text; `personal` and
 * `commitments` are read, never exported (`erased_by`, the erasure id in `personal`'s marker, is).
 */
export type ExportRow = Record<'id' | 'occurred_at' | 'action' | 'outcome' | 'recorded_at', string> &
  Record<'entity_type' | 'entity_id' | 'user_id' | 'ip' | 'user_agent' | 'request_id' | 'changes' | 'metadata', string | null> &
  Partial<Record<'personal' | 'commitments' | 'erased_by', string | null>>;

/**
 * One page, newest first: `limit + 1` rows are asked for, so that the extra one tells whether a
 * next page exists. Keyset: the cursor's `(occurred_at, id)` bounds the rows, so page N costs
 * what page 1 does, and rows inserted meanwhile neither shift nor repeat what follows.
 */
export function pageQuery(table: string, search: CheckedSearch, after: AuditCursorKey | undefined, limit: number): string {
  return `SELECT ${PAGE_COLUMNS} FROM ${table}${whereOf(search, after, '<')} ORDER BY occurred_at DESC, id DESC LIMIT ${limit + 1}`;
}

/**
 * A read prepared once per connection (`PREPARE`, then `EXECUTE` with the values): PostgreSQL can
 * keep its plan, where planning a page over many monthly partitions costs more than running it.
 * The name comes from the text, which holds no value, so the kinds of statement are few.
 *
 * @example
 * const read: PreparedRead = pageStatement('"public"."audit_log"', { entityType: 'NDA', entityId: 'e-1' }, undefined, 50);
 * read.args; // ["'NDA'", "'e-1'", '51']
 */
export interface PreparedRead {
  name: string;
  /** The SELECT, its values as `$1`…`$n`. */
  text: string;
  /** The values, as SQL literals, in order. */
  args: string[];
}

/**
 * {@link pageQuery} as a {@link PreparedRead}: the same rows, in the same order.
 *
 * @example
 * const read = pageStatement('"public"."audit_log"', { entityType: 'NDA', entityId: 'e-1' }, undefined, 50);
 * read.text; // 'SELECT … WHERE entity_type = $1 AND entity_id = $2 ORDER BY occurred_at DESC, id DESC LIMIT $3::integer'
 */
export function pageStatement(table: string, search: CheckedSearch, after: AuditCursorKey | undefined, limit: number): PreparedRead {
  const args: string[] = [];
  const param = (value: string) => {
    args.push(value);
    return `$${args.length}`;
  };
  const conditions: string[] = [];
  for (const [field, column] of Object.entries(FILTER_COLUMNS)) {
    const value = search[field as keyof typeof FILTER_COLUMNS];
    if (value !== undefined) conditions.push(`${column} = ${param(literal(value))}::text`);
  }
  if (search.from) conditions.push(`occurred_at >= ${param(literal(search.from))}::timestamptz`);
  if (search.to) conditions.push(`occurred_at < ${param(literal(search.to))}::timestamptz`);
  if (after) {
    const instant =
      typeof after.occurredUs === 'bigint'
        ? `((timestamp 'epoch' + ${param(String(after.occurredUs / DAY_US))}::bigint * interval '1 day' + ${param(String(after.occurredUs % DAY_US))}::bigint * interval '1 microsecond') AT TIME ZONE 'UTC')`
        : `${param(literal(after.occurredUs))}::timestamptz`;
    conditions.push(`(occurred_at, id) < (${instant}, ${param(literal(after.id))}::uuid)`);
  }
  const where = conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '';
  const text = `SELECT ${PAGE_COLUMNS} FROM ${table}${where} ORDER BY occurred_at DESC, id DESC LIMIT ${param(String(limit + 1))}::integer`;
  return { name: `audit_page_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`, text, args };
}

const DAY_US = 86_400_000_000n;

/**
 * The rows with one id, newest first: one, unless rows were planted with a sealed row's id (the
 * key is `(id, occurred_at)`). With `seal`, each row's sealing fields too (see `audit-seal-status.ts`).
 */
export function rowQuery(table: string, id: string, seal: boolean): string {
  const from = seal ? `${table} AS l${ROW_SEAL_FROM}` : `${table} AS l`;
  return `SELECT ${PAGE_COLUMNS}${seal ? ROW_SEAL_COLUMNS : ''} FROM ${from} WHERE l.id = ${literal(id)}::uuid ORDER BY l.occurred_at DESC`;
}

/** Every row of a search, oldest first, as text. */
export function exportQuery(table: string, search: CheckedSearch): string {
  // Qualified: a bare name in ORDER BY would be the text output column of the same name, sorted as text.
  return `SELECT ${EXPORT_COLUMNS} FROM ${table} AS a${whereOf(search, undefined, '>')} ORDER BY a.occurred_at, a.id`;
}

/**
 * The weight of each row of {@link exportQuery}'s search, in the same order: about the UTF-16
 * units it formats to (its text columns' lengths and a fixed 200 for the rest), so that a batch
 * is cut at a weight before its rows are read.
 *
 * @example
 * exportWeightsQuery('audit_log', checkSearch({ entityType: 'NDA' })); // SELECT … AS weight FROM audit_log AS a WHERE … ORDER BY a.occurred_at, a.id
 */
export function exportWeightsQuery(table: string, search: CheckedSearch): string {
  const texts = EXPORT_WEIGHED.map((column) => `coalesce(length(a.${column}), 0)`).join(' + ');
  return `SELECT 200::bigint + ${texts} AS weight FROM ${table} AS a${whereOf(search, undefined, '>')} ORDER BY a.occurred_at, a.id`;
}

/** A page row as the entity users know; a timestamp a `Date` cannot hold as its legible text. */
export function toAuditLog(row: PageRow): AuditTrailRow {
  const { changes, metadata } = revealPayloads(row.personal, row.commitments, row.changes, row.metadata);
  return Object.assign(new AuditLog(), {
    id: row.id,
    occurredAt: instantOf(row.occurred_at, row.occurred_text),
    action: row.action,
    entityType: row.entity_type,
    entityId: row.entity_id,
    userId: row.user_id,
    outcome: row.outcome,
    ip: row.ip,
    userAgent: row.user_agent,
    requestId: row.request_id,
    changes,
    metadata,
    recordedAt: instantOf(row.recorded_at, row.recorded_text),
    erasedBy: erasedBy(row.personal, row.commitments),
  });
}

function instantOf(value: Date | number, text: string): Date | string {
  return value instanceof Date && !Number.isNaN(value.getTime()) ? value : text;
}

/**
 * The WHERE clause, values as escaped literals (validated text without NUL, dates, a checked
 * cursor): the read then goes as one simple-protocol string with its `SET LOCAL`, one round trip.
 */
function whereOf(search: CheckedSearch, after: AuditCursorKey | undefined, direction: '<' | '>'): string {
  const conditions: string[] = [];
  for (const [field, column] of Object.entries(FILTER_COLUMNS)) {
    const value = search[field as keyof typeof FILTER_COLUMNS];
    if (value !== undefined) conditions.push(`${column} = ${literal(value)}`);
  }
  if (search.from) conditions.push(`occurred_at >= ${literal(search.from)}::timestamptz`);
  if (search.to) conditions.push(`occurred_at < ${literal(search.to)}::timestamptz`);
  if (after) conditions.push(`(occurred_at, id) ${direction} (${cursorInstantSql(after)}, ${literal(after.id)}::uuid)`);
  return conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '';
}
