import { type AuditEventLine } from './audit-event';
import { AUDIT_EVENTS } from './audit-event';

/**
 * Longest stderr line, newline included: Docker and its awslogs driver split longer lines, so
 * a longer JSON line would reach CloudWatch as broken pieces.
 */
export const MAX_LINE_BYTES = 16 * 1024;

/** What a line carrying part of an entry adds to the line: the entry's JSON text, cut in order. */
export interface EntryPartFields {
  auditId: string | null;
  part: number;
  parts: number;
  entryPart: string;
}

const PART_FIELDS_ALLOWANCE = '"part":99999,"parts":99999,"entryPart":"",'.length;
const FIELD_PREVIEW_CHARS = 1024;

/**
 * Serializes one event as lines of at most {@link MAX_LINE_BYTES}. A line that fits is the event
 * as it is. Otherwise its `entry` is carried as its JSON text in numbered parts: part 1 is the
 * event with its fields (no `entry`), parts 2…n are `audit.entry_part` lines with `auditId` and
 * `of` (the event); joined in order, the `entryPart`s are the entry's JSON. Other fields too long
 * for a line are cut, with `…` at the end of a cut text.
 *
 * @example
 * formatLines({ timestamp, level: 'warn', event: 'audit.buffered', auditId, entry }); // ['{…"part":1,"parts":4,"entryPart":"{\"id\":…'…]
 */
export function formatLines(line: AuditEventLine): string[] {
  const whole = JSON.stringify(line);
  if (fits(whole)) return [whole];
  const { entry, ...head } = line;
  const bounded = fitFields(head);
  if (entry === undefined) return [JSON.stringify(bounded)];
  const auditId = typeof bounded.auditId === 'string' ? bounded.auditId : null;
  const continuation = { timestamp: line.timestamp, level: line.level, event: AUDIT_EVENTS.entryPart, of: line.event, auditId };
  // A head this large is not one the module writes; the floor only keeps the cutting finite.
  const budget = Math.max(
    1024,
    MAX_LINE_BYTES - 1 - Math.max(bytes(JSON.stringify(bounded)), bytes(JSON.stringify(continuation))) - PART_FIELDS_ALLOWANCE,
  );
  const chunks = chunk(JSON.stringify(entry), budget);
  return chunks.map((entryPart, i) => {
    const parts = { part: i + 1, parts: chunks.length, entryPart };
    return JSON.stringify(i === 0 ? { ...bounded, ...parts } : { ...continuation, ...parts });
  });
}

/** Cuts `text` into pieces whose JSON string form is at most `budget` bytes, never inside a surrogate pair. */
function chunk(text: string, budget: number): string[] {
  const pieces: string[] = [];
  for (let start = 0; start < text.length;) {
    let end = Math.min(text.length, start + budget);
    for (;;) {
      if (end < text.length && /[\uD800-\uDBFF]/.test(text[end - 1])) end -= 1;
      const size = bytes(JSON.stringify(text.slice(start, end)));
      if (size <= budget) break;
      end = start + Math.max(1, Math.floor(((end - start) * budget) / size) - 1);
    }
    pieces.push(text.slice(start, end));
    start = end;
  }
  return pieces;
}

/** The fields of a line without its entry, each long text cut, so that the head of part 1 stays small. */
function fitFields(head: Omit<AuditEventLine, 'entry'>): AuditEventLine {
  if (fits(JSON.stringify(head))) return head as AuditEventLine;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(head)) {
    const json = JSON.stringify(value) ?? '';
    if (json.length <= FIELD_PREVIEW_CHARS) out[key] = value;
    else
      out[key] = typeof value === 'string' ? `${value.slice(0, FIELD_PREVIEW_CHARS)}…` : { _truncated: true, originalBytes: bytes(json) };
  }
  return out as AuditEventLine;
}

/**
 * Joins the parts of entries written by {@link formatLines}, in any order, each part counted once.
 *
 * @example
 * const parts = new EntryParts();
 * for (const text of lines) {
 *   const line: unknown = JSON.parse(text);
 *   const whole = EntryParts.isPart(line) ? parts.add(line) : null;
 *   if (whole && whole !== 'bad') use(whole.entry);
 * }
 */
export class EntryParts {
  private readonly open = new Map<string, { head?: Record<string, unknown>; pieces: (string | undefined)[]; missing: number }>();
  private readonly joined = new Set<string>();

  /** True for a line that carries part of an entry. */
  static isPart(line: unknown): line is Record<string, unknown> & EntryPartFields {
    return !!line && typeof line === 'object' && typeof (line as { entryPart?: unknown }).entryPart === 'string';
  }

  /**
   * Takes one part. Returns the event line of part 1 with `entry` (parsed; `undefined` if the joined
   * text is not JSON) once every part is in, `'bad'` for a part that cannot be placed, else null.
   */
  add(line: Record<string, unknown> & EntryPartFields): Record<string, unknown> | 'bad' | null {
    const { auditId, part, parts, entryPart, ...head } = line;
    const valid =
      typeof auditId === 'string' && Number.isInteger(parts) && Number.isInteger(part) && part >= 1 && part <= parts && parts <= 1e6;
    if (!valid) return 'bad';
    const key = `${auditId}/${parts}`;
    if (this.joined.has(key)) return null;
    let group = this.open.get(key);
    if (!group) this.open.set(key, (group = { pieces: new Array<string | undefined>(parts), missing: parts }));
    if (group.pieces[part - 1] !== undefined) return null;
    group.pieces[part - 1] = entryPart;
    group.missing -= 1;
    if (part === 1) group.head = { ...head, auditId };
    if (group.missing > 0) return null;
    this.open.delete(key);
    this.joined.add(key);
    let entry: unknown;
    try {
      entry = JSON.parse(group.pieces.join(''));
    } catch {
      entry = undefined;
    }
    return { ...group.head, entry };
  }

  /** The audit ids of entries some of whose parts never came. */
  incomplete(): string[] {
    return [...this.open.keys()].map((key) => key.slice(0, key.lastIndexOf('/')));
  }
}

function fits(line: string): boolean {
  return line.length < MAX_LINE_BYTES / 3 || bytes(line) + 1 <= MAX_LINE_BYTES;
}

function bytes(text: string): number {
  return Buffer.byteLength(text);
}
