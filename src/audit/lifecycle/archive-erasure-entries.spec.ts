import { entryAllowance, entryCount } from './archive-erasure-entries';

// How many erased rows of an archive an erasure entry accounts for (docs/LIFECYCLE.md, "What the
// offline check proves of an erased archive"), from the entry's `changes.erasure` alone.
describe('entryAllowance: the rows an erasure entry accounts for in an archive', () => {
  /** An `audit_erasure` entry's fields as an archive carries them, with `erasure` as its `changes.erasure`. */
  const entry = (erasure: Record<string, unknown>) => {
    const fields: (string | null)[] = Array.from({ length: 17 }, () => null);
    fields[11] = JSON.stringify({ erasure: { id: 'e-1', ...erasure } });
    return fields;
  };
  const erased = (counts: Record<string, number>) => new Map(Object.entries(counts));

  it('an entry with months accounts, of each month, for at most the rows it erased of that month', () => {
    const recorded = entry({ rows: 3, months: { '2026-02': 3 } });
    expect(entryAllowance(recorded, '2026-02', erased({ '2026-02': 3 }))).toBe(3);
    expect(entryAllowance(recorded, '2026-02', erased({ '2026-02': 4 }))).toBe(3);
    // Rows of another month: none of them, whatever its database count.
    expect(entryAllowance(recorded, '2026-01', erased({ '2026-01': 1 }))).toBe(0);
    expect(entryAllowance(recorded, '2026-01', erased({ '2026-01': 1, '2026-02': 1 }))).toBe(1);
  });

  it("counts a neighbour's edge rows under that neighbour's month", () => {
    const recorded = entry({ rows: 5, months: { '2026-01': 2, '2026-02': 3 } });
    expect(entryAllowance(recorded, '2026-01', erased({ '2026-01': 2, '2026-02': 1 }))).toBe(3);
    expect(entryAllowance(recorded, '2026-01', erased({ '2026-01': 3, '2026-02': 1 }))).toBe(3);
  });

  it('an entry with months of nothing (it erased no row in the database) accounts for nothing unless it rewrote this archive', () => {
    expect(entryAllowance(entry({ rows: 0, months: {} }), '2026-01', erased({ '2026-01': 1 }))).toBe(0);
    expect(entryAllowance(entry({ rows: 0, months: {}, archives: { '2026-01': 2 } }), '2026-01', erased({ '2026-01': 2 }))).toBe(2);
    expect(entryAllowance(entry({ rows: 0, months: {}, archives: { '2026-02': 2 } }), '2026-01', erased({ '2026-01': 2 }))).toBe(0);
  });

  it('an entry that names the archive accounts for the larger of its count there and what its months allow', () => {
    // Rewritten by it: up to archives[month], of any month the file holds.
    const rewrote = entry({ rows: 1, months: { '2026-03': 1 }, archives: { '2026-01': 2 } });
    expect(entryAllowance(rewrote, '2026-01', erased({ '2026-01': 1, '2025-12': 1 }))).toBe(2);
    expect(entryAllowance(rewrote, '2026-01', erased({ '2026-01': 3 }))).toBe(2);
    // Written again from the database after it: the database's rows of the month.
    const both = entry({ rows: 3, months: { '2026-01': 3 }, archives: { '2026-01': 1 } });
    expect(entryAllowance(both, '2026-01', erased({ '2026-01': 3 }))).toBe(3);
  });

  it('ignores counts that are not whole numbers', () => {
    const odd = entry({ rows: 2, months: { '2026-01': '2', '2026-02': -1, '2026-03': 1.5 } });
    expect(entryAllowance(odd, '2026-01', erased({ '2026-01': 2, '2026-02': 1, '2026-03': 2 }))).toBe(0);
  });

  it('an entry written before months were recorded keeps the rule of its time: archives[month], else its database rows', () => {
    const older = entry({ rows: 2 });
    expect(entryAllowance(older, '2026-01', erased({ '2026-02': 2 }))).toBe(2);
    expect(entryAllowance(older, '2026-01', erased({}))).toBe(entryCount(older, '2026-01'));
    expect(entryAllowance(entry({ rows: 2, archives: { '2026-01': 1 } }), '2026-01', erased({ '2026-01': 2 }))).toBe(1);
    // A months field that is no object is an entry that did not record them.
    expect(entryAllowance(entry({ rows: 2, months: [1] }), '2026-01', erased({ '2026-01': 2 }))).toBe(2);
  });
});
