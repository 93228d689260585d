import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { AUDIT_EVENTS } from './audit-event';
import { ConsoleSink } from './console.sink';

// Docker (and its awslogs driver) splits a log line longer than 16 KiB: no line may be longer.
const LINE_LIMIT = 16 * 1024;

/** An entry of about `bytes`, with text that grows when escaped: quotes, backslashes, newlines, accents, emoji. */
function largeRecord(bytes: number): AuditRecord {
  const unit = 'Grüße "quoted" \\ back\nslash 👩‍👩‍👧 ';
  const text = unit.repeat(Math.ceil(bytes / Buffer.byteLength(JSON.stringify(unit))));
  const { record } = new AuditEntryNormalizer([], 64 * 1024).normalize({
    action: 'nda_created',
    entityType: 'NDA',
    entityId: 'big-1',
    userId: 'u1',
    changes: { text: text.slice(0, Math.floor(text.length * 0.95)) },
  });
  return record;
}

function captured(emit: (sink: ConsoleSink) => void): string[] {
  const lines: string[] = [];
  const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: unknown) => {
    const text = String(chunk);
    // One write a line, newline-terminated: lines of several writers never interleave.
    expect(text).toMatch(/^[^\n]*\n$/);
    lines.push(text.slice(0, -1));
    return true;
  });
  try {
    emit(new ConsoleSink());
  } finally {
    spy.mockRestore();
  }
  return lines;
}

describe('ConsoleSink', () => {
  it('writes a 60 KiB entry as numbered parts, each line within 16 KiB and valid JSON, which join into the entry', () => {
    const record = largeRecord(60 * 1024);
    expect(Buffer.byteLength(JSON.stringify(record))).toBeGreaterThan(55 * 1024);
    const lines = captured((sink) =>
      sink.emit(AUDIT_EVENTS.buffered, 'warn', { auditId: record.id, action: record.action, entry: record }),
    );
    expect(lines.length).toBeGreaterThan(3);
    const parsed = lines.map((line) => {
      expect(Buffer.byteLength(`${line}\n`)).toBeLessThanOrEqual(LINE_LIMIT);
      return JSON.parse(line) as Record<string, unknown>;
    });
    expect(parsed[0]).toMatchObject({ event: AUDIT_EVENTS.buffered, level: 'warn', auditId: record.id, action: 'nda_created', part: 1 });
    expect(parsed.map((p) => p.event)).toEqual([AUDIT_EVENTS.buffered, ...parsed.slice(1).map(() => AUDIT_EVENTS.entryPart)]);
    expect(parsed.map((p) => [p.auditId, p.part, p.parts])).toEqual(parsed.map((_, i) => [record.id, i + 1, lines.length]));
    expect(JSON.parse(parsed.map((p) => p.entryPart).join(''))).toEqual(record);
  });

  // A check that assumed fewer bytes a character than UTF-8 takes would let these through as one line of 20 KiB.
  it.each([
    ['Cyrillic, 2 bytes a character', 'ж', 9000],
    ['the euro sign, 3 bytes', '€', 7000],
    ['CJK, 3 bytes', '中', 7000],
    ['emoji, 4 bytes (a surrogate pair)', '😀', 4500],
  ])('keeps each line within 16 KiB for an entry of %s, in parts that join into the entry', (_script, char, count) => {
    const { record } = new AuditEntryNormalizer([], 64 * 1024).normalize({ action: 'nda_created', changes: { text: char.repeat(count) } });
    const lines = captured((sink) => sink.emit(AUDIT_EVENTS.buffered, 'warn', { auditId: record.id, entry: record }));
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(Buffer.byteLength(`${line}\n`)).toBeLessThanOrEqual(LINE_LIMIT);
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(JSON.parse(parsed.map((p) => p.entryPart).join(''))).toEqual(record);
  });

  it('keeps a line without an entry within 16 KiB when its fields are multibyte text', () => {
    const lines = captured((sink) =>
      sink.emit(AUDIT_EVENTS.dropped, 'error', {
        reason: 'spool_bad_checksum',
        file: '€'.repeat(1000),
        text: '€'.repeat(7000),
        note: '中'.repeat(1000),
      }),
    );
    expect(lines).toHaveLength(1);
    expect(Buffer.byteLength(`${lines[0]}\n`)).toBeLessThanOrEqual(LINE_LIMIT);
    expect(JSON.parse(lines[0])).toMatchObject({ event: AUDIT_EVENTS.dropped, reason: 'spool_bad_checksum', file: '€'.repeat(1000) });
  });

  it('writes a small entry as one line, as before', () => {
    const record = largeRecord(1024);
    const lines = captured((sink) => sink.emit(AUDIT_EVENTS.buffered, 'warn', { auditId: record.id, entry: record }));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({ event: AUDIT_EVENTS.buffered, entry: record });
  });

  it('bounds a line without an entry, keeping its event and context', () => {
    const lines = captured((sink) =>
      sink.emit(AUDIT_EVENTS.dropped, 'error', { reason: 'spool_bad_checksum', file: 'seg-1.ndjson', line: 3, text: '"x'.repeat(40_000) }),
    );
    expect(lines).toHaveLength(1);
    expect(Buffer.byteLength(`${lines[0]}\n`)).toBeLessThanOrEqual(LINE_LIMIT);
    expect(JSON.parse(lines[0])).toMatchObject({
      event: AUDIT_EVENTS.dropped,
      reason: 'spool_bad_checksum',
      file: 'seg-1.ndjson',
      line: 3,
    });
  });
});
