import { type AuditExportFormat } from './audit-query.types';
import { erasedBy, revealPayloadTexts } from '../privacy/personal-reveal';
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
  ['erasedBy', 'erased_by'],
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

// A formula's first character after blanks: =, +, -, @, or their full-width forms.
const TRIGGER = '(?:(?![\\r\\n\\t;])[\\s\\u0000-\\u001f\\u007f])*[=+\\-@\\uff1d\\uff0b\\uff0d\\uff20]';
/** A line break, tab or semicolon inside a cell (a boundary to an app that splits on it) before a formula. */
const INNER_START = new RegExp(`([\\r\\n\\t;])(?=${TRIGGER})`, 'g');
/** A cell that begins a formula, or begins with a tab, line break or NUL. */
const CELL_START = new RegExp(`^(?:[\\u0000\\t\\r\\n]|${TRIGGER})`);
const NEEDS_QUOTES = /[",\r\n]/;

/**
 * Rows as lines of the format: one JSON object per line (the JSON columns embedded as they
 * are), or CSV records per RFC 4180 (CRLF, fields with a comma, quote or line break quoted, quotes
 * doubled; null an empty field, empty text `""`, JSON columns as JSON text). CSV cells are
 * neutralised against formula injection as OWASP advises: a `'` goes before every place a
 * spreadsheet could start a formula ({@link neutraliseCell}), and such a cell is quoted.
 *
 * @example
 * exportLines('ndjson', rows); // '{"id":"0193…","occurredAt":"2026-11-28T09:00:00.000Z",…}\n…'
 */
export function exportLines(format: AuditExportFormat, stored: readonly ExportRow[]): string {
  let out = '';
  // Personal values kept apart are put back in place, or `[ERASED]` with the erasure's id (docs/PRIVACY.md).
  const rows: readonly ExportRow[] = stored.map((row) =>
    row.commitments
      ? {
          ...row,
          ...revealPayloadTexts(row.personal, row.commitments, row.changes, row.metadata),
          erased_by: erasedBy(row.personal, row.commitments),
        }
      : row,
  );
  if (format === 'ndjson') {
    for (const row of rows) {
      let line = '{';
      for (const [name, column, json] of FIELDS) {
        const value = row[column] ?? null;
        line += `${line.length > 1 ? ',' : ''}"${name}":${value === null ? 'null' : json ? value : JSON.stringify(value)}`;
      }
      out += `${line}}\n`;
    }
    return out;
  }
  for (const row of rows) {
    out += `${FIELDS.map(([, column]) => csvField(row[column] ?? null)).join(',')}\r\n`;
  }
  return out;
}

/**
 * `value` with a `'` put at the start and after each line break, tab or semicolon where a
 * formula could begin, so that a spreadsheet shows the text instead of running it; other values
 * as they are.
 *
 * @example
 * neutraliseCell('=HYPERLINK("http://evil.example")'); // `'=HYPERLINK("http://evil.example")`
 * neutraliseCell('Mozilla/5.0;=cmd'); // "Mozilla/5.0;'=cmd"
 */
export function neutraliseCell(value: string): string {
  const inner = value.replace(INNER_START, "$1'");
  return CELL_START.test(inner) ? `'${inner}` : inner;
}

function csvField(value: string | null): string {
  if (value === null) return '';
  // As PostgreSQL's COPY does: an empty text is quoted, so that it differs from null.
  if (value === '') return '""';
  const safe = neutraliseCell(value);
  return safe !== value || NEEDS_QUOTES.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}
