import fc from 'fast-check';
import { exportHeader, exportLines } from './audit-export.format';
import { type ExportRow } from './audit-query.sql';
import { parseCsv } from '../../../test/support/csv';

const text = fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\u0000'));
const json = fc.jsonValue().map((v) => JSON.stringify(v));
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
        ] as const;
        expect(records).toEqual(rows.map((r) => columns.map((c) => r[c] ?? '')));
        for (const r of rows) if (r.user_agent === '') expect(csv).toContain('""');
      }),
    );
  });
});
