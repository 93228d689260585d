import { LEGACY_MARK_PREFIX, legacyBoundOf, legacyMark, retentionMonthSql } from './legacy-range';

describe('legacy-range', () => {
  it('names the range by the last month before the bound, across a year', () => {
    expect(legacyMark('2026-12')).toBe('legacy..2026-11');
    expect(legacyMark('2027-01')).toBe('legacy..2026-12');
  });

  it('reads the bound back from the mark, and nothing from a month or another text', () => {
    expect(legacyBoundOf('legacy..2026-11')).toBe('2026-12');
    expect(legacyBoundOf('legacy..2026-12')).toBe('2027-01');
    expect(legacyBoundOf(legacyMark('2030-03'))).toBe('2030-03');
    for (const other of ['2026-11', 'legacy', 'legacy..2026-1', 'xlegacy..2026-11', 'legacy..2026-11 ']) {
      expect(legacyBoundOf(other)).toBeNull();
    }
  });

  it("reads a month's checkpoint by its first day and the legacy partition's by any other day", () => {
    const sql = retentionMonthSql('s.retention_month');
    expect(sql).toBe(
      `pg_catalog.to_char(s.retention_month, CASE WHEN pg_catalog.date_part('day', s.retention_month) OPERATOR(pg_catalog.=) 1 THEN 'YYYY-MM' ELSE '"legacy.."YYYY-MM' END)`,
    );
    expect(LEGACY_MARK_PREFIX).toBe('legacy..');
  });
});
