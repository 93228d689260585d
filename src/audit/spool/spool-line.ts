import { createHash } from 'node:crypto';
import { type AuditRecord } from '../audit-entry';

/** One spool line: the record and a checksum of its JSON, so a flipped byte or a torn write shows. */
interface SpoolLine {
  sum: string;
  entry: AuditRecord;
}

/**
 * Why a line was not accepted. `line_too_long`: longer than any line the spool writes;
 * `segment_missing`: its segment vanished from the disk before replay read it.
 */
export type LineRejection = 'torn_line' | 'bad_json' | 'bad_checksum' | 'bad_entry' | 'line_too_long' | 'segment_missing';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Serializes a record as one NDJSON line with its checksum. `annotations` (JSON-safe) follow the
 * entry on the line, outside the checksum, for the operator; decoding ignores them.
 *
 * @example
 * encodeSpoolLine(record); // '{"sum":"3f2a…","entry":{"id":"0190…",…}}\n'
 * encodeSpoolLine(record, { quarantine: { error } }); // '{"sum":"3f2a…","entry":{…},"quarantine":{…}}\n'
 */
export function encodeSpoolLine(record: AuditRecord, annotations?: Record<string, unknown>): string {
  const entry = JSON.stringify(record);
  const extra = annotations ? JSON.stringify(annotations).slice(1, -1) : '';
  return `{"sum":"${checksum(entry)}","entry":${entry}${extra ? `,${extra}` : ''}}\n`;
}

/** Parses and verifies one spool line (without its newline). */
export function decodeSpoolLine(line: string): { record: AuditRecord } | { rejected: LineRejection } {
  let parsed: SpoolLine;
  try {
    parsed = JSON.parse(line) as SpoolLine;
  } catch {
    return { rejected: 'bad_json' };
  }
  if (!parsed || typeof parsed.sum !== 'string' || parsed.entry === undefined) return { rejected: 'bad_json' };
  if (checksum(JSON.stringify(parsed.entry)) !== parsed.sum) return { rejected: 'bad_checksum' };
  return isAuditRecord(parsed.entry) ? { record: parsed.entry } : { rejected: 'bad_entry' };
}

/** True when `value` has the shape of a normalized record (as found on a spool or stderr line). */
export function isAuditRecord(value: unknown): value is AuditRecord {
  const r = value as Partial<AuditRecord> | null;
  return (
    !!r &&
    typeof r.id === 'string' &&
    UUID.test(r.id) &&
    typeof r.occurredAt === 'string' &&
    !Number.isNaN(Date.parse(r.occurredAt)) &&
    typeof r.action === 'string' &&
    r.action.length > 0 &&
    (r.authCode === undefined || typeof r.authCode === 'string') &&
    (r.personal === undefined || typeof r.personal === 'string') &&
    (r.commitments === undefined || typeof r.commitments === 'string') &&
    (r.outcome === 'success' || r.outcome === 'failure') &&
    ['entityType', 'entityId', 'userId', 'ip', 'userAgent', 'requestId'].every((k) => {
      const v = (r as Record<string, unknown>)[k];
      return v === null || v === undefined || typeof v === 'string';
    })
  );
}

function checksum(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
