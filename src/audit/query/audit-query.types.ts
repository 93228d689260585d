import { type AuditOutcome } from '../audit-entry';
import { type AuditLog } from '../audit-log.entity';
import { type AuditSealStatus } from './audit-seal-status';

/**
 * What to read from the trail; every field narrows it. `from` is inclusive, `to` exclusive, both
 * instants (a `Date` or ISO 8601 text with a time zone, or a bare date meaning UTC midnight).
 *
 * @example
 * const filter: AuditSearch = { action: 'nda_updated', outcome: 'failure', from: '2026-11-01', to: '2026-12-01' };
 */
export interface AuditSearch {
  userId?: string;
  action?: string;
  entityType?: string;
  entityId?: string;
  outcome?: AuditOutcome;
  from?: Date | string;
  to?: Date | string;
}

/**
 * Which page: the first without `cursor`, the next with the `nextCursor` of the one before.
 *
 * @example
 * const next: AuditPageRequest = { cursor: page.nextCursor ?? undefined, limit: 100 };
 */
export interface AuditPageRequest {
  cursor?: string;
  /** Rows per page, 1 to 500; default 50. */
  limit?: number;
}

/**
 * A row of the trail as the read side gives it: an {@link AuditLog} whose timestamps are `Date`s,
 * except one no `Date` can hold (`infinity`, `-infinity`, past year 275760, stored before the
 * schema refused them), given as its ISO 8601 text (`'infinity'`, `'+294276-12-31T23:59:59.999Z'`).
 * `erasedBy` is the id of the erasure that took the row's personal values (each then reads
 * `[ERASED]`), or null: a value logged as the text `[ERASED]` is not erased.
 *
 * @example
 * const at = row.occurredAt instanceof Date ? row.occurredAt.toISOString() : row.occurredAt;
 * const erased = row.erasedBy !== null;
 */
export type AuditTrailRow = Omit<AuditLog, 'occurredAt' | 'recordedAt'> & {
  occurredAt: Date | string;
  recordedAt: Date | string;
  erasedBy: string | null;
};

/**
 * One page of the trail, newest first. `nextCursor` is null on the last page.
 *
 * @example
 * const { items, nextCursor } = await queries.history('NDA', id);
 */
export interface AuditPage {
  items: AuditTrailRow[];
  nextCursor: string | null;
}

/**
 * One row read in full by its id (`GET <path>/rows/:id`): `items` holds one row, none when no
 * row has that id, or more when rows were planted with another row's id. With integrity on, each
 * carries its `seal` status; with integrity off, no `seal` field.
 *
 * @example
 * const { items: [row] } = await queries.row(id);
 * if (row?.seal?.state === 'sealed') console.log(`sealed by seal ${row.seal.seq}`);
 */
export interface AuditRowRead {
  items: (AuditTrailRow & { seal?: AuditSealStatus })[];
}

/**
 * Formats of an export: one JSON object per line, or CSV (RFC 4180) with a header row.
 *
 * @example
 * const format: AuditExportFormat = 'csv';
 * const stream = await auditQuery.export({ format, from: '2026-11-01' });
 */
export type AuditExportFormat = 'ndjson' | 'csv';

/**
 * What to export: the rows of a search, oldest first, as NDJSON or CSV.
 *
 * @example
 * const request: AuditExportRequest = { format: 'csv', from: '2026-11-01', to: '2026-12-01' };
 */
export interface AuditExportRequest extends AuditSearch {
  format?: AuditExportFormat;
}
