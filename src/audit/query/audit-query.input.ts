import { type AuditOutcome } from '../audit-entry';
import { AuditQueryError } from '../audit.errors';
import { canonicalEntityId } from '../entity-id';
import { type AuditExportFormat, type AuditSearch } from './audit-query.types';

/** A search after validation: instants as UTC text to the microsecond, text filters as given (a UUID entity id in lower case). */
export interface CheckedSearch {
  userId?: string;
  action?: string;
  entityType?: string;
  entityId?: string;
  outcome?: AuditOutcome;
  /** `2026-11-02T10:00:00.000500Z`: the column keeps microseconds, and so does the bound. */
  from?: string;
  to?: string;
}

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;
const MAX_TEXT = 500;
const TEXT_FILTERS = ['userId', 'action', 'entityType', 'entityId'] as const;
// A date, or a date and time with seconds optional, fractions to the microsecond, and a zone.
const INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}))?$/;
const FRACTION = /\.(\d{1,6})/;

// 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z.
const FIRST_MS = -62_135_596_800_000;
const LAST_MS = 253_402_300_799_999;

/**
 * Validates a search, throwing an {@link AuditQueryError} that names the bad field.
 *
 * @example
 * checkSearch({ from: '2026-11-01', to: '2026-10-01' }); // throws: "to" must be after "from"
 */
export function checkSearch(search: AuditSearch): CheckedSearch {
  const checked: CheckedSearch = {};
  for (const name of TEXT_FILTERS) {
    const value = search[name];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value === '' || value.length > MAX_TEXT || value.includes('\u0000')) {
      throw AuditQueryError.invalid(name, `text of 1 to ${MAX_TEXT} characters`, value);
    }
    checked[name] = name === 'entityId' ? canonicalEntityId(value) : value;
  }
  if (search.outcome !== undefined) {
    if (search.outcome !== 'success' && search.outcome !== 'failure') {
      throw AuditQueryError.invalid('outcome', "'success' or 'failure'", search.outcome);
    }
    checked.outcome = search.outcome;
  }
  checked.from = instant('from', search.from);
  checked.to = instant('to', search.to);
  // Fixed-width UTC text from year 0001 to 9999: its order is the instants'.
  if (checked.from && checked.to && checked.to <= checked.from) {
    throw AuditQueryError.invalid('to', `after "from" (${checked.from})`, search.to);
  }
  return checked;
}

/**
 * Validates a page size: an integer from 1 to {@link MAX_LIMIT} (digits, over HTTP).
 *
 * @example
 * checkLimit('100'); // 100
 */
export function checkLimit(limit: unknown): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  const value = typeof limit === 'string' && /^\d{1,4}$/.test(limit) ? Number(limit) : limit;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_LIMIT) {
    throw AuditQueryError.invalid('limit', `an integer from 1 to ${MAX_LIMIT}`, limit);
  }
  return value;
}

/**
 * Validates an export format; NDJSON when absent.
 *
 * @example
 * checkFormat('csv'); // 'csv'
 */
export function checkFormat(format: unknown): AuditExportFormat {
  if (format === undefined) return 'ndjson';
  if (format !== 'ndjson' && format !== 'csv') throw AuditQueryError.invalid('format', "'ndjson' or 'csv'", format);
  return format;
}

/** The instant as UTC text to the microsecond; `Date()` keeps milliseconds, the digits past them are carried over. */
function instant(name: 'from' | 'to', value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const expected = 'an ISO 8601 date, or date and time with a time zone (2026-11-28T09:00:00Z), in years 1 to 9999 (UTC)';
  if (value instanceof Date) {
    if (!inYears1To9999(value)) throw AuditQueryError.invalid(name, expected, Number.isNaN(value.getTime()) ? 'Invalid Date' : value);
    return microsText(value, '000');
  }
  const date = typeof value === 'string' && INSTANT.test(value) ? new Date(value) : undefined;
  // Date() rolls 2026-02-31 over to March: a day that does not exist is refused, not moved.
  if (!date || !inYears1To9999(date) || !sameDay(value as string, date)) {
    throw AuditQueryError.invalid(name, expected, value);
  }
  const fraction = FRACTION.exec(value as string)?.[1] ?? '';
  return microsText(date, fraction.padEnd(6, '0').slice(3));
}

function microsText(date: Date, micros: string): string {
  return `${date.toISOString().slice(0, -1)}${micros}Z`;
}

/** Within what ISO 8601 and PostgreSQL both spell plainly: 9999-12-31T23:00:00-01:00, say, is year 10000 in UTC. */
function inYears1To9999(date: Date): boolean {
  const time = date.getTime();
  return time >= FIRST_MS && time <= LAST_MS;
}

function sameDay(text: string, date: Date): boolean {
  const offset = /([+-])(\d{2}):(\d{2})$/.exec(text);
  const shift = offset ? (offset[1] === '+' ? 1 : -1) * (Number(offset[2]) * 60 + Number(offset[3])) * 60_000 : 0;
  return new Date(date.getTime() + shift).toISOString().slice(0, 10) === text.slice(0, 10);
}
