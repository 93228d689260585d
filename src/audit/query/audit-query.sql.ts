import { literal } from '../audit-insert-sql';
import { AuditLog } from '../audit-log.entity';
import { type AuditCursorKey, cursorInstant } from './audit-cursor';
import { type CheckedSearch } from './audit-query.input';

const FILTER_COLUMNS = {
  userId: 'user_id',
  action: 'action',
  entityType: 'entity_type',
  entityId: 'entity_id',
  outcome: 'outcome',
} as const;

/** The columns of a page, with the row's key to the microsecond for its cursor. */
const PAGE_COLUMNS = `id, occurred_at, action, entity_type, entity_id, user_id, outcome, ip, user_agent, request_id, changes, metadata,
  recorded_at, (extract(epoch FROM occurred_at) * 1000000)::bigint AS occurred_us`;

const iso = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** The columns of an export, as text: JSON and timestamps are written out as PostgreSQL spells them, never parsed. */
const EXPORT_COLUMNS = `id::text AS id, ${iso('occurred_at')} AS occurred_at, action, entity_type, entity_id, user_id, outcome, ip,
  user_agent, request_id, changes::text AS changes, metadata::text AS metadata, ${iso('recorded_at')} AS recorded_at`;

/** A row of a page as `pg` returns it. */
export interface PageRow {
  id: string;
  occurred_at: Date;
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
  recorded_at: Date;
  occurred_us: string;
}

/** A row of an export: every column text (or null), JSON columns as JSON text. */
export type ExportRow = Record<'id' | 'occurred_at' | 'action' | 'outcome' | 'recorded_at', string> &
  Record<'entity_type' | 'entity_id' | 'user_id' | 'ip' | 'user_agent' | 'request_id' | 'changes' | 'metadata', string | null>;

/**
 * One page, newest first: `limit + 1` rows are asked for, so that the extra one tells whether a
 * next page exists. Keyset: the cursor's `(occurred_at, id)` bounds the rows, so page N costs
 * what page 1 does, and rows inserted meanwhile neither shift nor repeat what follows.
 */
export function pageQuery(table: string, search: CheckedSearch, after: AuditCursorKey | undefined, limit: number): string {
  return `SELECT ${PAGE_COLUMNS} FROM ${table}${whereOf(search, after, '<')} ORDER BY occurred_at DESC, id DESC LIMIT ${limit + 1}`;
}

/** Every row of a search, oldest first, as text. */
export function exportQuery(table: string, search: CheckedSearch): string {
  // Qualified: a bare name in ORDER BY would be the text output column of the same name, sorted as text.
  return `SELECT ${EXPORT_COLUMNS} FROM ${table} AS a${whereOf(search, undefined, '>')} ORDER BY a.occurred_at, a.id`;
}

/** A page row as the entity users know. */
export function toAuditLog(row: PageRow): AuditLog {
  return Object.assign(new AuditLog(), {
    id: row.id,
    occurredAt: row.occurred_at,
    action: row.action,
    entityType: row.entity_type,
    entityId: row.entity_id,
    userId: row.user_id,
    outcome: row.outcome,
    ip: row.ip,
    userAgent: row.user_agent,
    requestId: row.request_id,
    changes: row.changes,
    metadata: row.metadata,
    recordedAt: row.recorded_at,
  });
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
  if (search.from) conditions.push(`occurred_at >= ${literal(search.from.toISOString())}::timestamptz`);
  if (search.to) conditions.push(`occurred_at < ${literal(search.to.toISOString())}::timestamptz`);
  if (after) conditions.push(`(occurred_at, id) ${direction} (${literal(cursorInstant(after))}::timestamptz, ${literal(after.id)}::uuid)`);
  return conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '';
}
