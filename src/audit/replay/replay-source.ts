import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type AuditRecord } from '../audit-entry';
import { AUDIT_EVENTS, type EntryPartFields, EntryParts } from '../sinks';
import { decodeSpoolLine, isAuditRecord, type LineRejection } from '../spool';

/**
 * A line that looked like an audit entry but could not be accepted. `missing_parts`: an entry
 * written in parts (a line of at most 16 KiB each) some of which are not in the inputs; `line` is
 * the first of its parts found.
 */
export interface ReplayRejection {
  file: string;
  line: number;
  reason: LineRejection | 'missing_parts';
}

/** Everything found in the inputs: the records (each id once), and what was not taken. */
export interface ReplaySource {
  records: AuditRecord[];
  duplicates: number;
  rejected: ReplayRejection[];
  /** Lines that are not audit entries (other events, other logs). */
  skipped: number;
}

const CARRIERS = new Set<string>([AUDIT_EVENTS.buffered, AUDIT_EVENTS.spooled, AUDIT_EVENTS.quarantined, AUDIT_EVENTS.dropped]);

/**
 * Reads spool segments, quarantine files (`<spoolDir>/quarantine/`, spool lines too) and
 * CloudWatch Logs exports of the module's stderr (raw JSON lines, `<timestamp> <json>` lines as in
 * an S3 export, `{"message": "<json>"}` lines, or the `{"events": [{"message": …}]}` document of
 * `aws logs filter-log-events`) and collects the entries carried by spool lines and by
 * `audit.buffered` / `audit.spooled` / `audit.quarantined` lines and the `audit.dropped` lines that
 * carry one (a drop the module could not avoid), joining an entry written in
 * numbered parts (`part`, `parts`, `entryPart`; later parts as `audit.entry_part` lines), in any order.
 *
 * @example
 * const { records, rejected } = await readReplaySource(['/var/spool/audit', 'export.log']);
 */
export async function readReplaySource(paths: readonly string[]): Promise<ReplaySource> {
  const source: ReplaySource = { records: [], duplicates: 0, rejected: [], skipped: 0 };
  const seen = new Set<string>();
  const take = (found: Found, file: string, line: number) => {
    if (found === 'skip') source.skipped += 1;
    else if ('rejected' in found) source.rejected.push({ file, line, reason: found.rejected });
    else if ('part' in found) return;
    else if (seen.has(found.record.id)) source.duplicates += 1;
    else {
      seen.add(found.record.id);
      source.records.push(found.record);
    }
  };
  const parts = new EntryParts();
  const firstPart = new Map<string, { file: string; line: number }>();
  for (const file of await expand(paths)) {
    const text = await readFile(file, 'utf8');
    const whole = parseJson(text.trim());
    const lines: string[] = isEventsDocument(whole) ? whole.events.map((e) => String(e.message)) : text.split('\n');
    const last = lines.length - 1;
    lines.forEach((line, index) => {
      if (line.trim() === '') return;
      let found = entryOf(line);
      // An unterminated last line of a spool segment is a write torn by a crash.
      const torn = index === last && !text.endsWith('\n');
      if (torn && typeof found === 'object' && 'rejected' in found && found.rejected === 'bad_json') found = { rejected: 'torn_line' };
      if (typeof found === 'object' && 'part' in found) {
        const joined = parts.add(found.part);
        if (!firstPart.has(String(found.part.auditId))) firstPart.set(String(found.part.auditId), { file, line: index + 1 });
        if (joined === 'bad') found = { rejected: 'bad_entry' };
        // The entry's lines count as one: joined, it is taken (or skipped) as its first part's event.
        else if (joined !== null) found = carried(joined);
      }
      take(found, file, index + 1);
    });
  }
  for (const auditId of parts.incomplete()) {
    const { file, line } = firstPart.get(auditId) ?? { file: '', line: 0 };
    source.rejected.push({ file, line, reason: 'missing_parts' });
  }
  return source;
}

type Found = { record: AuditRecord } | { rejected: LineRejection } | { part: Record<string, unknown> & EntryPartFields } | 'skip';

function entryOf(line: string): Found {
  const start = line.indexOf('{');
  if (start < 0) return 'skip';
  const parsed = parseJson(line.slice(start));
  if (parsed === undefined) return { rejected: 'bad_json' };
  const object = parsed as { sum?: unknown; entry?: unknown; event?: unknown; message?: unknown };
  if (typeof object.sum === 'string' && 'entry' in object) return decodeSpoolLine(line.slice(start));
  if (typeof object.message === 'string') return entryOf(object.message);
  if (EntryParts.isPart(object)) return { part: object };
  return carried(object);
}

/** The entry of an `audit.buffered`, `audit.spooled`, `audit.quarantined` or `audit.dropped` line; other lines are skipped. */
function carried(object: { event?: unknown; entry?: unknown }): Found {
  if (typeof object.event !== 'string' || !CARRIERS.has(object.event) || object.entry === undefined) return 'skip';
  return isAuditRecord(object.entry) ? { record: object.entry } : { rejected: 'bad_entry' };
}

async function expand(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    if ((await stat(path)).isDirectory()) {
      const names = (await readdir(path)).filter((n) => n.endsWith('.ndjson') || n.endsWith('.log') || n.endsWith('.json')).sort();
      files.push(...names.map((n) => join(path, n)));
    } else {
      files.push(path);
    }
  }
  return files;
}

function isEventsDocument(value: unknown): value is { events: { message?: unknown }[] } {
  return !!value && typeof value === 'object' && Array.isArray((value as { events?: unknown }).events);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
