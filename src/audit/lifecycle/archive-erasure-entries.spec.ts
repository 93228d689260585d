import { createSecretKey } from 'node:crypto';
import { type ResolvedEntryKey } from '../integrity/entry-auth';
import { type Anomaly } from '../integrity/verifier';
import { ERASURE_ACTION } from '../privacy/erasure';
import { archiveRowsDigest } from '../privacy/archive-rows-digest';
import { archiveErasureEntries, entryAllowance, entryCount } from './archive-erasure-entries';
import { type ArchiveHeader } from './archive-format';

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

  it('an entry that names the rows it erases in the archive accounts for them there only when they are exactly the rows erased under it', () => {
    const named = entry({ rows: 0, months: {}, archives: { '2026-01': 2 }, archiveRows: { '2026-01': archiveRowsDigest(['r-1', 'r-2']) } });
    expect(entryAllowance(named, '2026-01', erased({ '2026-01': 2 }), ['r-2', 'r-1'])).toBe(2);
    // Its rewrite never happened there (a failed run, or the entry copied in): other rows marked by hand under it.
    expect(entryAllowance(named, '2026-01', erased({ '2026-01': 1 }), ['r-9'])).toBe(0);
    expect(entryAllowance(named, '2026-01', erased({ '2026-01': 2 }), ['r-1', 'r-9'])).toBe(0);
    expect(entryAllowance(named, '2026-01', erased({ '2026-01': 3 }), ['r-1', 'r-2', 'r-9'])).toBe(0);
    // No digest for this month, or one that is no text: it names none of the rows here.
    expect(
      entryAllowance(
        { ...named, 11: JSON.stringify({ erasure: { id: 'e-1', rows: 0, months: {}, archives: { '2026-01': 2 }, archiveRows: {} } }) },
        '2026-01',
        erased({ '2026-01': 2 }),
        ['r-1', 'r-2'],
      ),
    ).toBe(0);
    // What its months allow still holds (an archive written again from the database after it).
    const both = entry({
      rows: 1,
      months: { '2026-01': 1 },
      archives: { '2026-01': 2 },
      archiveRows: { '2026-01': archiveRowsDigest(['r-1', 'r-2']) },
    });
    expect(entryAllowance(both, '2026-01', erased({ '2026-01': 1 }), ['r-7'])).toBe(1);
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

// An entry without an entry code proves nothing of itself: it may account only for rows written
// before it, and before the chain's entry authentication began (docs/LIFECYCLE.md, same section).
describe('an erasure entry without an entry code, carried in an archive', () => {
  const ERASURE = '01937a4c-0000-7000-8000-0000000000e1';
  const uncoded = (tx: string | null, erasure: Record<string, unknown>) => {
    const fields: (string | null)[] = Array.from({ length: 17 }, () => null);
    [fields[0], fields[1], fields[3]] = ['01937a4c-0000-7000-8000-0000000000f1', tx, ERASURE_ACTION];
    fields[11] = JSON.stringify({ erasure: { id: ERASURE, ...erasure } });
    return fields;
  };
  /** The archive's rows erased under ERASURE, all of 2026-01, by their tx. */
  const rows =
    (...txs: (bigint | null)[]) =>
    (erasure: string, counts: (tx: bigint | null) => boolean = () => true) =>
      new Map(erasure === ERASURE ? [['2026-01', txs.filter(counts).length]] : []);
  const counted = (
    fields: (string | null)[],
    erased: ReturnType<typeof rows>,
    boundary: string | null = '800',
    keys: ResolvedEntryKey[] | null = null,
  ) => {
    const found: Anomaly[] = [];
    const header = { month: '2026-01', erasureEntries: [fields] } as unknown as ArchiveHeader;
    const { entries, forged } = archiveErasureEntries(header, keys, boundary, (a) => found.push(a), erased);
    return { count: entries.map((e) => Number(e.count)), forged: [...forged], found };
  };

  it('accounts only for rows whose tx is below its own and below the boundary', () => {
    const months = { rows: 3, months: { '2026-01': 3 } };
    expect(counted(uncoded('700', months), rows(600n, 650n, 690n)).count).toEqual([3]);
    expect(counted(uncoded('700', months), rows(600n, 700n, 900n)).count).toEqual([1]);
    expect(counted(uncoded('900', months), rows(600n, 810n, 850n)).count).toEqual([1]);
    expect(counted(uncoded('1', months), rows(600n, 810n, 850n)).count).toEqual([0]);
    // No boundary known: its own tx still bounds it.
    expect(counted(uncoded('700', months), rows(600n, 810n, 850n), null).count).toEqual([1]);
    // A row without a tx was written before rows carried one.
    expect(counted(uncoded('700', months), rows(null, 900n)).count).toEqual([1]);
  });

  it('without a tx it accounts for no row that has one, and with entry keys and a boundary it is forged', () => {
    const none = uncoded(null, { rows: 2, months: { '2026-01': 2 } });
    expect(counted(none, rows(600n, 900n)).count).toEqual([0]);
    expect(counted(none, rows(null, 900n)).count).toEqual([1]);
    const keys = [{ id: 'k1', key: createSecretKey(Buffer.alloc(32, 1)) }];
    const judged = counted(none, rows(600n), '800', keys);
    expect(judged.forged).toEqual([none[0]]);
    expect(judged.found).toEqual([expect.objectContaining({ kind: 'row_forged', row: none[0] })]);
    // Before entry authentication is known to have begun, an entry without a code is legacy.
    expect(counted(none, rows(null), null, keys).forged).toEqual([]);
    // With a tx below the boundary it is legacy too, and bounded as above.
    expect(counted(uncoded('700', { rows: 1, months: { '2026-01': 1 } }), rows(900n), '800', keys)).toEqual({
      count: [0],
      forged: [],
      found: [],
    });
  });

  it('an entry of the older shape (no months) accounts for no more rows than it may have erased here', () => {
    expect(counted(uncoded('700', { rows: 5 }), rows(600n, 650n)).count).toEqual([2]);
    expect(counted(uncoded('700', { rows: 5 }), rows(600n, 900n, 950n)).count).toEqual([1]);
    expect(counted(uncoded('1', { rows: 5 }), rows(900n)).count).toEqual([0]);
  });

  it('an entry with a code is not bounded by tx: its code covers its counts', () => {
    const coded = uncoded('1', { rows: 2, months: { '2026-01': 2 } });
    coded[15] = 'v1:k1:AAAA';
    expect(counted(coded, rows(900n, 950n)).count).toEqual([2]);
  });
});
