import { LEGACY_MARK_PREFIX, legacyBoundOf, legacyMark, MONTH_OR_LEGACY_PATTERN, monthSpan, retentionMonthSql } from './legacy-range';

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

  it('spans a month, or everything before the bound for the legacy range', () => {
    expect(monthSpan('2026-12')).toEqual({ from: Date.UTC(2026, 11, 1), to: Date.UTC(2027, 0, 1) });
    expect(monthSpan('legacy..2026-11')).toEqual({ from: -Infinity, to: Date.UTC(2026, 11, 1) });
  });

  it('spans, marks and bounds the months of the years 0001 to 0099 as those years, not as 1901 to 1999', () => {
    expect(monthSpan('0050-03')).toEqual({ from: Date.parse('0050-03-01T00:00:00Z'), to: Date.parse('0050-04-01T00:00:00Z') });
    expect(monthSpan('0099-12')).toEqual({ from: Date.parse('0099-12-01T00:00:00Z'), to: Date.parse('0100-01-01T00:00:00Z') });
    expect(monthSpan('0001-01').from).toBe(Date.parse('0001-01-01T00:00:00Z'));
    expect(monthSpan('legacy..0050-02')).toEqual({ from: -Infinity, to: Date.parse('0050-03-01T00:00:00Z') });
    expect(legacyMark('0050-01')).toBe('legacy..0049-12');
    expect(legacyBoundOf('legacy..0099-12')).toBe('0100-01');
  });

  it('takes a month or the legacy range as an archive names it, nothing else', () => {
    for (const good of ['2026-01', '2026-12', 'legacy..2026-11']) expect(MONTH_OR_LEGACY_PATTERN.test(good)).toBe(true);
    for (const bad of ['2026-13', '2026-00', 'legacy', 'legacy..2026-13', 'legacy.2026-11', '../2026-11', 'legacy..2026-11/..']) {
      expect(MONTH_OR_LEGACY_PATTERN.test(bad)).toBe(false);
    }
  });
});
