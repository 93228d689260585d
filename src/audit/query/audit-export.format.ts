import { type AuditExportFormat } from './audit-query.types';
import { type ExportRow } from './audit-query.sql';

/** Export fields in order: the names of `AuditLog`'s properties, and the row columns they come from. */
const FIELDS: readonly (readonly [name: string, column: keyof ExportRow, json?: true])[] = [
  ['id', 'id'],
  ['occurredAt', 'occurred_at'],
  ['action', 'action'],
  ['entityType', 'entity_type'],
  ['entityId', 'entity_id'],
  ['userId', 'user_id'],
  ['outcome', 'outcome'],
  ['ip', 'ip'],
  ['userAgent', 'user_agent'],
  ['requestId', 'request_id'],
  ['changes', 'changes', true],
  ['metadata', 'metadata', true],
  ['recordedAt', 'recorded_at'],
];

/** MIME type of each export format. */
export const EXPORT_CONTENT_TYPES: Record<AuditExportFormat, string> = {
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
};

/**
 * What comes before the first row: the header line of a CSV export, nothing for NDJSON.
 *
 * @example
 * exportHeader('csv'); // 'id,occurredAt,action,…,recordedAt\r\n'
 */
export function exportHeader(format: AuditExportFormat): string {
  return format === 'csv' ? `${FIELDS.map(([name]) => name).join(',')}\r\n` : '';
}

/**
 * Rows as lines of the format: one JSON object per line (the JSON columns embedded as they
 * are), or CSV records per RFC 4180 (CRLF, fields with a comma, quote or line break quoted, quotes
 * doubled; null an empty field, empty text `""`, JSON columns as JSON text).
 *
 * @example
 * exportLines('ndjson', rows); // '{"id":"0193…","occurredAt":"2026-11-28T09:00:00.000Z",…}\n…'
 */
export function exportLines(format: AuditExportFormat, rows: readonly ExportRow[]): string {
  let out = '';
  if (format === 'ndjson') {
    for (const row of rows) {
      let line = '{';
      for (const [name, column, json] of FIELDS) {
        const value = row[column];
        line += `${line.length > 1 ? ',' : ''}"${name}":${value === null ? 'null' : json ? value : JSON.stringify(value)}`;
      }
      out += `${line}}\n`;
    }
    return out;
  }
  for (const row of rows) {
    out += `${FIELDS.map(([, column]) => csvField(row[column])).join(',')}\r\n`;
  }
  return out;
}

function csvField(value: string | null): string {
  if (value === null) return '';
  // As PostgreSQL's COPY does: an empty text is quoted, so that it differs from null.
  if (value === '') return '""';
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}
