import { type Seal } from '../integrity/seal';
import { type WitnessedSeal } from '../integrity/witness';
import { type ArchiveHeader } from './archive-format';
import { checkLabel, type LabelEvidence, MonthTally, witnessedCheckpoints } from './archive-label';

/** µs since the epoch of a UTC time, as the rows file writes `occurred_at`. */
const us = (iso: string) => String(Date.parse(iso) * 1000);
const seal = (seq: number, hex: string) => ({ seq, hash: Buffer.from(hex, 'hex') }) as Seal;
const header = (more: Partial<ArchiveHeader> = {}) =>
  ({ month: '2026-01', trail: 'app/audit_log', rowsFile: 'audit-2026-01.ndjson.gz', monthRows: 2, ...more }) as ArchiveHeader;

/** Evidence of a genuine archive of 2026-01: seals 4 and 5, a row of the month in each. */
function genuine(more: Partial<LabelEvidence> = {}): LabelEvidence {
  const tally = new MonthTally('2026-01', 2);
  tally.count(us('2026-01-01T00:00:00Z'), 0);
  tally.count(us('2026-02-01T00:00:00Z'), 1);
  tally.count(us('2026-01-31T23:59:59.999999Z'), 1);
  return {
    header: header(),
    sealsPath: '/a/audit-2026-01.seals.json',
    sealed: [seal(4, 'aa'), seal(5, 'bb')],
    tally,
    checkpoints: [],
    ...more,
  };
}
const details = (evidence: LabelEvidence) => checkLabel(evidence).map((a) => `${a.kind} ${a.month}: ${a.detail}`);

describe('MonthTally', () => {
  it("counts the rows whose occurred_at falls in the month, from its first µs up to the next month's first, and which end seals hold one", () => {
    const tally = new MonthTally('2026-01', 3);
    for (const [at, index] of [
      ['2025-12-31T23:59:59.999999Z', 0],
      ['2026-01-01T00:00:00Z', 1],
      ['2026-01-31T23:59:59.999999Z', 2],
      ['2026-02-01T00:00:00Z', 0],
    ] as const) {
      tally.count(us(at), index);
    }
    tally.count(null, 0);
    tally.count('not a time', 0);
    expect({ rows: tally.rows, firstHolds: tally.firstHolds, lastHolds: tally.lastHolds }).toEqual({
      rows: 2,
      firstHolds: false,
      lastHolds: true,
    });
  });

  it('never counts a row with no occurred_at, even in the month of the epoch', () => {
    const tally = new MonthTally('1970-01', 1);
    tally.count(null, 0);
    tally.count('0', 0);
    expect(tally.rows).toBe(1);
  });

  it('counts a row of the month after the last seal (index past the end) without taking it for an end', () => {
    const tally = new MonthTally('2026-01', 1);
    tally.count(us('2026-01-02T00:00:00Z'), 1);
    expect({ rows: tally.rows, firstHolds: tally.firstHolds, lastHolds: tally.lastHolds }).toEqual({
      rows: 1,
      firstHolds: false,
      lastHolds: false,
    });
  });
});

describe('checkLabel', () => {
  it('finds nothing in a genuine archive', () => {
    expect(details(genuine())).toEqual([]);
  });

  it('names files renamed to another month', () => {
    expect(details(genuine({ sealsPath: '/a/audit-2026-02.seals.json', header: header({ rowsFile: 'audit-2026-02.ndjson.gz' }) }))).toEqual(
      [
        'archive_mislabelled 2026-01: its seals file is named audit-2026-02.seals.json, not audit-2026-01.seals.json',
        'archive_mislabelled 2026-01: its rows file is named audit-2026-02.ndjson.gz, not audit-2026-01.ndjson.gz',
      ],
    );
  });

  it('takes a seals file under a name of its own choosing (not audit-…) as given', () => {
    for (const name of ['january.json', 'copy-of-audit-2026-02.seals.json', 'audit-2026-02.seals.json.bak']) {
      expect(details(genuine({ sealsPath: `/a/${name}` }))).toEqual([]);
    }
  });

  it('names a month row count other than the rows file holds', () => {
    expect(details(genuine({ header: header({ monthRows: 3 }) }))).toEqual([
      'archive_mislabelled 2026-01: the seals file says 3 rows of the month, the rows file holds 2',
    ]);
  });

  it('names each end seal of the segment that holds no row of the month', () => {
    const tally = new MonthTally('2026-01', 3);
    tally.count(us('2026-01-10T00:00:00Z'), 1);
    const sealed = [seal(4, 'aa'), seal(5, 'bb'), seal(6, 'cc')];
    expect(details(genuine({ tally, sealed, header: header({ monthRows: 1 }) }))).toEqual([
      'archive_mislabelled 2026-01: the first (seal 4) and the last (seal 6) seal of the segment holds no row of the month',
    ]);
    const lastOnly = new MonthTally('2026-01', 3);
    lastOnly.count(us('2026-01-10T00:00:00Z'), 0);
    expect(details(genuine({ tally: lastOnly, sealed, header: header({ monthRows: 1 }) }))).toEqual([
      'archive_mislabelled 2026-01: the last (seal 6) seal of the segment holds no row of the month',
    ]);
  });

  it('holds seals with no row of the month to a checkpoint of the month that removed none: covered by no seal', () => {
    const tally = new MonthTally('2026-01', 2);
    tally.count(us('2026-02-10T00:00:00Z'), 0);
    expect(details(genuine({ tally, header: header({ monthRows: 0 }), checkpoints: [{ seq: 9, rows: 0, covered: null }] }))).toEqual([
      'archive_mislabelled 2026-01: the first (seal 4) and the last (seal 5) seal of the segment holds no row of the month',
    ]);
  });

  it('names an archive with no row of its month unless a checkpoint of the month says it had none, or the caller knows it empty', () => {
    const empty = { tally: new MonthTally('2026-01', 0), sealed: [], header: header({ monthRows: 0 }) };
    expect(details(genuine(empty))).toEqual([
      'archive_mislabelled 2026-01: the archive holds no row of the month, and no retention checkpoint of the month says it had none',
    ]);
    expect(details(genuine({ ...empty, checkpoints: [{ seq: 9, rows: 0, covered: null }] }))).toEqual([]);
    expect(details(genuine({ ...empty, allowEmptyMonth: true }))).toEqual([]);
    expect(details(genuine({ ...empty, checkpoints: [{ seq: 9, rows: 4, covered: 'bb' }] }))).toEqual([
      "archive_mislabelled 2026-01: the month's retention checkpoint (seal 9) removed 4 rows, the newest covered by bb; the archive holds 0, the newest covered by no seal",
    ]);
  });

  it("holds the archive to the month's retention checkpoint: its rows and the newest seal that covered one", () => {
    expect(details(genuine({ checkpoints: [{ seq: 9, rows: 2, covered: 'bb' }] }))).toEqual([]);
    expect(details(genuine({ checkpoints: [{ seq: 9, rows: 3, covered: 'bb' }] }))).toEqual([
      "archive_mislabelled 2026-01: the month's retention checkpoint (seal 9) removed 3 rows, the newest covered by bb; the archive holds 2, the newest covered by bb",
    ]);
    expect(details(genuine({ checkpoints: [{ seq: 9, rows: 0, covered: null }] }))).toEqual([
      "archive_mislabelled 2026-01: the month's retention checkpoint (seal 9) removed 0 rows, the newest covered by no seal; the archive holds 2, the newest covered by bb",
    ]);
    // The newest seal is the segment's last, however many there are.
    const three = genuine({ sealed: [seal(4, 'aa'), seal(5, 'bb'), seal(6, 'cc')], tally: new MonthTally('2026-01', 3) });
    three.tally.count(us('2026-01-02T00:00:00Z'), 0);
    three.tally.count(us('2026-01-03T00:00:00Z'), 2);
    expect(details({ ...three, checkpoints: [{ seq: 9, rows: 2, covered: 'cc' }] })).toEqual([]);
    expect(details({ ...three, checkpoints: [{ seq: 9, rows: 2, covered: 'bb' }] })).toHaveLength(1);
  });

  it("names the witness's trail when it is not the archive's", () => {
    const witnessed = (trail: string) => new Map([[4, [{ trail, seq: 4 } as WitnessedSeal]]]);
    expect(details(genuine({ witness: witnessed('app/audit_log') }))).toEqual([]);
    expect(details(genuine({ witness: witnessed('payments/audit_log') }))).toEqual([
      'archive_mislabelled 2026-01: the archive names trail app/audit_log; its seals were checked against the witness of payments/audit_log',
    ]);
  });
});

describe('witnessedCheckpoints', () => {
  it("takes the witness's retention lines of the month only", () => {
    const line = (seq: number, month?: string) =>
      ({ trail: 't', seq, ...(month ? { retention: { month, rows: seq, covered: null } } : {}) }) as WitnessedSeal;
    const witness = new Map([
      [1, [line(1)]],
      [2, [line(2, '2026-01')]],
      [3, [line(3, '2026-02')]],
    ]);
    expect(witnessedCheckpoints(witness, '2026-01')).toEqual([{ seq: 2, rows: 2, covered: null }]);
    expect(witnessedCheckpoints(undefined, '2026-01')).toEqual([]);
  });
});
