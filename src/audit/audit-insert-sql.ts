import { type AuditRecord } from './audit-entry';
import { payloadJson } from './record-json';

/** The columns every audit insert writes, in parameter order. */
export const AUDIT_COLUMNS = [
  'id',
  'occurred_at',
  'action',
  'entity_type',
  'entity_id',
  'user_id',
  'outcome',
  'ip',
  'user_agent',
  'request_id',
  'changes',
  'metadata',
];

/**
 * The column of an entry's authentication code (integrity's entry keys). Written only by a batch
 * in which an entry carries one, so that an app without entry keys also writes to a table made
 * before the column existed.
 */
export const AUTH_CODE_COLUMN = 'auth_code';

/** The columns of personal values and their commitments (the `privacy` option), written only by a batch in which an entry has them. */
export const PERSONAL_COLUMNS = ['personal', 'commitments'];

/** The columns a batch writes: {@link AUDIT_COLUMNS}, the code's column when an entry has a code, then the personal ones when an entry has them. */
function columnsOf(records: readonly AuditRecord[]): string[] {
  const columns = records.some((r) => r.authCode !== undefined) ? [...AUDIT_COLUMNS, AUTH_CODE_COLUMN] : AUDIT_COLUMNS;
  return records.some((r) => r.commitments !== undefined) ? [...columns, ...PERSONAL_COLUMNS] : columns;
}

/**
 * The multi-row insert of `records`; with `returning`, the ids really inserted come back (the
 * ones already present do not).
 *
 * @example
 * const { sql, parameters } = buildAuditInsert('"audit_log"', records, { returning: true });
 */
export function buildAuditInsert(
  table: string,
  records: readonly AuditRecord[],
  options: { returning?: boolean } = {},
): { sql: string; parameters: unknown[] } {
  const parameters: unknown[] = [];
  const columns = columnsOf(records);
  const withCode = columns.includes(AUTH_CODE_COLUMN);
  const withPersonal = columns.includes(PERSONAL_COLUMNS[0]);
  const rows = records.map((r) => {
    parameters.push(...rowValues(r));
    if (withCode) parameters.push(r.authCode ?? null);
    if (withPersonal) parameters.push(r.personal ?? null, r.commitments ?? null);
    const base = parameters.length - columns.length;
    return `(${columns.map((_, i) => `$${base + i + 1}`).join(', ')})`;
  });
  const returning = options.returning ? ' RETURNING id' : '';
  return {
    sql: `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${rows.join(', ')} ON CONFLICT DO NOTHING${returning}`,
    parameters,
  };
}

/**
 * The multi-row insert of `records` as one SQL text, values as escaped literals (no parameters),
 * so that it can share a simple-protocol query string with the `SET LOCAL`s before it.
 *
 * @example
 * buildAuditInsertText('"audit_log"', records); // INSERT INTO "audit_log" (id, …) VALUES ('0190…', …), … ON CONFLICT DO NOTHING
 */
export function buildAuditInsertText(table: string, records: readonly AuditRecord[]): string {
  // Appended piece by piece, in the order of AUDIT_COLUMNS: a batch of 500 rows is half a
  // megabyte of text, built without the arrays and joins of every row.
  const columns = columnsOf(records);
  const withCode = columns.includes(AUTH_CODE_COLUMN);
  const withPersonal = columns.includes(PERSONAL_COLUMNS[0]);
  let sql = `INSERT INTO ${table} (${columns.join(', ')}) VALUES `;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    const { changes, metadata } = payloadJson(r);
    sql += i === 0 ? '(' : ', (';
    sql += `${literal(r.id)}, ${literal(r.occurredAt)}, ${literal(r.action)}, ${literal(r.entityType)}, ${literal(r.entityId)}, `;
    sql += `${literal(r.userId)}, ${literal(r.outcome)}, ${literal(r.ip)}, ${literal(r.userAgent)}, ${literal(r.requestId)}, `;
    sql += `${literal(changes)}, ${literal(metadata)}${withCode ? `, ${literal(r.authCode ?? null)}` : ''}`;
    sql += withPersonal ? `, ${literal(r.personal ?? null)}, ${literal(r.commitments ?? null)})` : ')';
  }
  return `${sql} ON CONFLICT DO NOTHING`;
}

/**
 * An INSERT of no rows into every audit column: PostgreSQL checks the privileges, takes the
 * table's lock and refuses it on a read-only server as for a real batch, and writes nothing.
 *
 * @example
 * buildAuditProbeText('"audit_log"'); // INSERT INTO "audit_log" (id, …) SELECT NULL, … WHERE false
 */
export function buildAuditProbeText(table: string): string {
  return `INSERT INTO ${table} (${AUDIT_COLUMNS.join(', ')}) SELECT ${AUDIT_COLUMNS.map(() => 'NULL').join(', ')} WHERE false`;
}

/** A record's values in the order of {@link AUDIT_COLUMNS}. */
function rowValues(r: AuditRecord): (string | null)[] {
  const { changes, metadata } = payloadJson(r);
  return [r.id, r.occurredAt, r.action, r.entityType, r.entityId, r.userId, r.outcome, r.ip, r.userAgent, r.requestId, changes, metadata];
}

const QUOTE_OR_BACKSLASH = /['\\]/;

/**
 * A string as an SQL literal, right whatever `standard_conforming_strings` says: quotes doubled,
 * and with a backslash in it, an `E''` string with backslashes doubled. Normalized text holds no
 * NUL, which no PostgreSQL string can.
 */
export function literal(value: string | null): string {
  if (value === null) return 'NULL';
  if (!QUOTE_OR_BACKSLASH.test(value)) return `'${value}'`;
  const quoted = value.replaceAll("'", "''");
  return value.includes('\\') ? ` E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
}

/** `schema.table` → `"schema"."table"`. */
export function quoteTablePath(path: string): string {
  return path
    .split('.')
    .map((part) => `"${part.replaceAll('"', '""')}"`)
    .join('.');
}
