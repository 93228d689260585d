import { monthOf, monthStart } from './month-partitions';

describe('month-partitions: months as instants', () => {
  it('starts a month, and a month some months later or earlier, across years', () => {
    expect(new Date(monthStart('2026-12')).toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(new Date(monthStart('2026-12', 1)).toISOString()).toBe('2027-01-01T00:00:00.000Z');
    expect(new Date(monthStart('2026-01', -1)).toISOString()).toBe('2025-12-01T00:00:00.000Z');
    expect(new Date(monthStart('2026-03', -15)).toISOString()).toBe('2024-12-01T00:00:00.000Z');
  });

  it('starts the months of the years 0001 to 0099 in those years, as the table stores them', () => {
    expect(new Date(monthStart('0050-03')).toISOString()).toBe('0050-03-01T00:00:00.000Z');
    expect(new Date(monthStart('0001-01')).toISOString()).toBe('0001-01-01T00:00:00.000Z');
    expect(new Date(monthStart('0099-12', 1)).toISOString()).toBe('0100-01-01T00:00:00.000Z');
    expect(new Date(monthStart('0100-01', -1)).toISOString()).toBe('0099-12-01T00:00:00.000Z');
    expect(new Date(monthStart('9999-12')).toISOString()).toBe('9999-12-01T00:00:00.000Z');
  });

  it('names the month of an instant, and reads back the month it starts', () => {
    for (const month of ['0001-01', '0050-03', '0099-12', '1970-01', '2026-12', '9999-12']) {
      expect(monthOf(monthStart(month))).toBe(month);
      expect(monthOf(monthStart(month, 1) - 1)).toBe(month);
    }
  });
});
