import { AUDIT_EVENTS } from './audit-event';
import { EntryParts, formatLines, MAX_LINE_BYTES } from './line-parts';

// Splitting an event into lines of at most 16 KiB, and joining the parts again as audit:replay does.
const TIMESTAMP = '2026-12-04T10:00:00.000Z';
const entry = (text: string) => ({ id: 'a1', action: 'nda_created', changes: { text } });
const event = (fields: Record<string, unknown>) => ({
  timestamp: TIMESTAMP,
  level: 'warn' as const,
  event: AUDIT_EVENTS.buffered,
  ...fields,
});
const parse = (lines: string[]) => lines.map((line) => JSON.parse(line) as Record<string, unknown>);

describe('formatLines', () => {
  it('keeps an event that fits as one line, exactly its JSON', () => {
    const line = event({ auditId: 'a1', entry: entry('x'.repeat(MAX_LINE_BYTES - 200)) });
    expect(formatLines(line)).toEqual([JSON.stringify(line)]);
  });

  it('splits at the byte limit: a line of 16 KiB with its newline is one line, a byte more is parts', () => {
    const base = event({ auditId: 'a1', entry: entry('') });
    const room = MAX_LINE_BYTES - 1 - Buffer.byteLength(JSON.stringify(base));
    expect(formatLines(event({ auditId: 'a1', entry: entry('x'.repeat(room)) }))).toHaveLength(1);
    const over = formatLines(event({ auditId: 'a1', entry: entry('x'.repeat(room + 1)) }));
    expect(over).toHaveLength(2);
    expect(parse(over).map((p) => [p.part, p.parts])).toEqual([
      [1, 2],
      [2, 2],
    ]);
  });

  it('carries the entry in parts: part 1 the event without its entry, then audit.entry_part lines naming it', () => {
    const big = entry('y'.repeat(40_000));
    const lines = formatLines(event({ auditId: 'a1', action: 'nda_created', entry: big }));
    const parsed = parse(lines);
    expect(parsed).toHaveLength(3);
    for (const line of lines) expect(Buffer.byteLength(line) + 1).toBeLessThanOrEqual(MAX_LINE_BYTES);
    expect(parsed[0]).toEqual({
      timestamp: TIMESTAMP,
      level: 'warn',
      event: AUDIT_EVENTS.buffered,
      auditId: 'a1',
      action: 'nda_created',
      part: 1,
      parts: 3,
      entryPart: expect.any(String) as unknown,
    });
    expect(parsed[1]).toEqual({
      timestamp: TIMESTAMP,
      level: 'warn',
      event: AUDIT_EVENTS.entryPart,
      of: AUDIT_EVENTS.buffered,
      auditId: 'a1',
      part: 2,
      parts: 3,
      entryPart: expect.any(String) as unknown,
    });
    expect(JSON.parse(parsed.map((p) => p.entryPart).join(''))).toEqual(big);
    // The parts fill their lines: no more of them than the bytes need.
    expect(Buffer.byteLength(lines[0])).toBeGreaterThan(MAX_LINE_BYTES - 200);
  });

  it('names no audit id on the parts of an entry whose event has none', () => {
    const lines = formatLines(event({ entry: entry('z'.repeat(40_000)) }));
    // The continuation lines are longer than this small part 1: their parts must still fit.
    for (const line of lines) expect(Buffer.byteLength(line) + 1).toBeLessThanOrEqual(MAX_LINE_BYTES);
    const parsed = parse(lines);
    expect(parsed.map((p) => p.auditId)).toEqual([undefined, null, null]);
  });

  it('never cuts a surrogate pair, whatever the offset of the cut', () => {
    for (const [pad, unit] of [0, 1, 2, 3].flatMap((n) => [n, n + 4].map((m) => [m, m < 4 ? '😀' : 'a😀'] as const))) {
      const big = entry(`${'p'.repeat(pad)}${unit.repeat(24_000 / unit.length)}`);
      const parsed = parse(formatLines(event({ auditId: 'a1', entry: big })));
      for (const p of parsed) expect(p.entryPart as string).not.toMatch(/^[\uDC00-\uDFFF]|[\uD800-\uDBFF]$/);
      expect(JSON.parse(parsed.map((p) => p.entryPart).join(''))).toEqual(big);
    }
  });

  it('cuts a long text field to 1024 characters and an ellipsis, and a long object field to its size', () => {
    const [line] = formatLines(
      event({
        event: AUDIT_EVENTS.dropped,
        reason: 'r',
        text: 't'.repeat(20_000),
        context: { list: 'c'.repeat(20_000) },
        small: 's'.repeat(1000),
      }),
    );
    const parsed = JSON.parse(line) as Record<string, unknown>;
    expect(parsed.text).toBe(`${'t'.repeat(1024)}…`);
    expect(parsed.context).toEqual({ _truncated: true, originalBytes: Buffer.byteLength(JSON.stringify({ list: 'c'.repeat(20_000) })) });
    expect(parsed.small).toBe('s'.repeat(1000));
    expect(parsed.reason).toBe('r');
  });

  it('keeps the fields of part 1 whole when only the entry is too long for a line', () => {
    const note = 'n'.repeat(3000);
    const [first] = parse(formatLines(event({ auditId: 'a1', note, entry: entry('q'.repeat(40_000)) })));
    expect(first.note).toBe(note);
  });

  it('keeps a field of exactly 1024 JSON characters whole', () => {
    const exact = 'e'.repeat(1022);
    const [line] = formatLines(event({ event: AUDIT_EVENTS.dropped, text: 't'.repeat(20_000), exact }));
    expect((JSON.parse(line) as { exact: string }).exact).toBe(exact);
  });
});

describe('EntryParts', () => {
  const split = (auditId: string, size = 40_000) => parse(formatLines(event({ auditId, entry: entry('q'.repeat(size)) })));

  it('tells part lines from others', () => {
    expect(EntryParts.isPart({ entryPart: '' })).toBe(true);
    expect(EntryParts.isPart({ entryPart: 3 })).toBe(false);
    expect(EntryParts.isPart({ event: 'audit.buffered' })).toBe(false);
    expect(EntryParts.isPart(null)).toBe(false);
    expect(EntryParts.isPart('entryPart')).toBe(false);
  });

  it('joins the parts in any order, once each, into the event of part 1 with its entry', () => {
    const parts = new EntryParts();
    const lines = split('a1');
    expect(lines).toHaveLength(3);
    const [first, second, third] = lines as (Record<string, unknown> & {
      entryPart: string;
      part: number;
      parts: number;
      auditId: string;
    })[];
    expect(parts.add(third)).toBeNull();
    expect(parts.add(third)).toBeNull();
    expect(parts.add(first)).toBeNull();
    expect(parts.incomplete()).toEqual(['a1']);
    expect(parts.add(second)).toEqual({
      timestamp: TIMESTAMP,
      level: 'warn',
      event: AUDIT_EVENTS.buffered,
      auditId: 'a1',
      entry: entry('q'.repeat(40_000)),
    });
    expect(parts.incomplete()).toEqual([]);
    // A part seen again after its entry was joined is not a new entry.
    expect(parts.add(second)).toBeNull();
    expect(parts.incomplete()).toEqual([]);
  });

  it('keeps entries apart by audit id and by number of parts', () => {
    const parts = new EntryParts();
    const a = split('a1') as (Record<string, unknown> & { entryPart: string; part: number; parts: number; auditId: string })[];
    const b = split('b2', 20_000) as typeof a;
    expect(b).toHaveLength(2);
    expect(parts.add(a[0])).toBeNull();
    expect(parts.add(b[1])).toBeNull();
    expect(parts.incomplete().sort()).toEqual(['a1', 'b2']);
    expect(parts.add(b[0])).toMatchObject({ auditId: 'b2' });
    expect(parts.incomplete()).toEqual(['a1']);
  });

  it('gives an entry undefined when its joined text is not JSON', () => {
    const parts = new EntryParts();
    const bad = { auditId: 'c3', part: 1, parts: 2, entryPart: '{"a":' };
    expect(parts.add(bad)).toBeNull();
    expect(parts.add({ auditId: 'c3', part: 2, parts: 2, entryPart: 'nope' })).toEqual({ auditId: 'c3', entry: undefined });
  });

  it.each([
    ['no audit id', { auditId: null, part: 1, parts: 2 }],
    ['part 0', { auditId: 'd', part: 0, parts: 2 }],
    ['a part past the count', { auditId: 'd', part: 3, parts: 2 }],
    ['a fractional part', { auditId: 'd', part: 1.5, parts: 2 }],
    ['a fractional count', { auditId: 'd', part: 1, parts: 2.5 }],
    ['more than a million parts', { auditId: 'd', part: 1, parts: 1_000_001 }],
  ])('refuses a part with %s', (_case, fields) => {
    const parts = new EntryParts();
    expect(parts.add({ ...fields, entryPart: 'x' } as never)).toBe('bad');
    expect(parts.incomplete()).toEqual([]);
  });

  it('takes a part numbered as high as the count, up to a million parts', () => {
    const parts = new EntryParts();
    expect(parts.add({ auditId: 'e', part: 1_000_000, parts: 1_000_000, entryPart: 'x' })).toBeNull();
    expect(parts.add({ auditId: 'f', part: 1, parts: 1, entryPart: '7' })).toEqual({ auditId: 'f', entry: 7 });
  });
});
