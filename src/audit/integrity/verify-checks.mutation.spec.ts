import { EntryChecks } from './entry-checks';
import { merkleRoot } from './merkle';
import { leafHash } from './row-encoding';
import * as sealModule from './seal';
import { GENESIS_HASH, manifestEntry, type Seal, sealHash } from './seal';
import {
  ANOMALY_KINDS,
  type Anomaly,
  checkSeal,
  checkSealedRows,
  emptyReport,
  finishReport,
  isCheckpoint,
  judgeTailRow,
  type LeafRow,
  SealChain,
} from './verify-checks';
import { type WitnessedSeal } from './witness';

// What the verify-checks group's mutation run left alive: each finding's exact words, the edges
// of each decision, and the untouched seal's shortcut (its manifest never read into a map).
const id = (n: number) => `01937a4c-0000-7000-8000-${String(n).padStart(12, '0')}`;

/** A row as the checks take it; `tx` null for a row from before integrity. */
function row(n: number, tx: bigint | null = BigInt(800 + n), action = 'nda_created'): LeafRow {
  const fields = [id(n), tx === null ? null : String(tx), '1764300000000000', action, 'nda', `nda-${n}`];
  return { id: id(n), tx, leaf: leafHash(fields), problem: null, forged: null };
}

/** An unsigned seal of `rows` after `previous`, whose hash matches its fields. */
function sealOf(seq: number, rows: LeafRow[], previous: Seal | null, over: Partial<Seal> = {}): Seal {
  const last = rows[rows.length - 1];
  const unsigned = {
    seq,
    version: 1,
    prevHash: previous ? previous.hash : GENESIS_HASH,
    lastTx: last.tx === null ? null : String(last.tx),
    lastId: last.id,
    horizon: last.tx === null ? '0' : String(last.tx + 1n),
    rowCount: rows.length,
    root: merkleRoot(rows.map((r) => r.leaf)),
    manifest: Buffer.concat(rows.map((r) => manifestEntry(r.id, r.leaf))),
    sealedAt: 1764300000000 + seq,
    ...over,
  };
  return { ...unsigned, hash: sealHash(unsigned), keyId: null, signature: null };
}

const seal1 = sealOf(
  1,
  [1, 2, 3].map((n) => row(n)),
  null,
);
const seal2 = sealOf(
  2,
  [4, 5].map((n) => row(n)),
  seal1,
);
const all = () => [1, 2, 3, 4, 5].map((n) => row(n));

function rowFindings(rows: LeafRow[], retained = new Map<number, Buffer>()): Anomaly[] {
  const found = [seal1, seal2].map((): Anomaly[] => []);
  checkSealedRows([seal1, seal2], rows, found, retained);
  return found.flat();
}
function sealFindings(seal: Seal, previous: Seal | null, witness?: Map<number, WitnessedSeal[]>): Anomaly[] {
  const found: Anomaly[] = [];
  checkSeal(seal, previous, { witness }, (a) => found.push(a));
  return found;
}
const said = (found: Anomaly[]) => found.map((a) => `${a.kind} ${a.row ?? a.seal}: ${a.detail}`);
const line = (seq: number, hash: string, prevHash: string): WitnessedSeal => ({
  trail: 't',
  seq,
  hash,
  prevHash,
  rows: 2,
  lastId: id(5),
  sealedAt: '',
});

describe('verify checks: a seal on its own and as a link', () => {
  it('says which of its fields fail', () => {
    expect(said(sealFindings({ ...seal2, rowCount: 3 }, seal1))).toEqual(['seal_changed 2: its fields do not match its hash']);
    expect(said(sealFindings({ ...seal2, sealedAt: Number.NaN }, seal1))).toEqual([
      'seal_changed 2: its sealed_at is not a finite time, so its fields do not match its hash',
    ]);
    expect(said(sealFindings(seal2, { ...seal1, hash: Buffer.alloc(32) }))).toEqual([
      "seal_out_of_chain 2: its previous hash is not seal 1's hash",
    ]);
  });

  it('holds seal 1 to the genesis hash, and a seal after a gap to nothing', () => {
    const first = sealOf(1, [row(1)], null, { prevHash: Buffer.alloc(32, 9) });
    expect(said(sealFindings(first, null))).toEqual(["seal_out_of_chain 1: its previous hash is not seal 0's hash"]);
    const afterGap = sealOf(3, [row(6)], seal2, { prevHash: Buffer.alloc(32, 9) });
    expect(sealFindings(afterGap, seal1)).toEqual([]);
    expect(sealFindings(afterGap, null)).toEqual([]);
  });

  it('names a witness line of the seal that tells another hash, with every hash the witness tells', () => {
    const hex = seal2.hash.toString('hex');
    const short = (h: string) => `${h.slice(0, 16)}…`;
    const [a, b] = ['aa'.repeat(32), 'bb'.repeat(32)];
    const own = new Map([[2, [line(2, hex, ''), line(2, a, '')]]]);
    expect(said(sealFindings(seal2, seal1, own))).toEqual([
      `seal_witness_mismatch 2: hash ${short(hex)}, the witness has ${short(hex)}, ${short(a)}`,
    ]);
    const next = new Map([[3, [line(3, '', hex), line(3, '', b)]]]);
    expect(said(sealFindings(seal2, seal1, next))).toEqual([
      `seal_witness_mismatch 2: hash ${short(hex)}, the witness has ${short(hex)}, ${short(b)}`,
    ]);
    const both = new Map([
      [2, [line(2, a, '')]],
      [3, [line(3, '', a), line(3, '', b)]],
    ]);
    expect(said(sealFindings(seal2, seal1, both))).toEqual([
      `seal_witness_mismatch 2: hash ${short(hex)}, the witness has ${short(a)}, ${short(b)}`,
    ]);
    expect(sealFindings(seal2, seal1, new Map([[3, [line(3, '', hex)]]]))).toEqual([]);
  });

  it('tells a retention checkpoint by every one of its marks', () => {
    const mark = { month: '2026-01', rows: 1, covered: null };
    const checkpoint = { ...seal2, rowCount: 0, lastTx: seal1.lastTx, lastId: seal1.lastId, retention: mark };
    expect(isCheckpoint(checkpoint, seal1)).toBe(true);
    expect(isCheckpoint({ ...checkpoint, rowCount: 1 }, seal1)).toBe(false);
    expect(isCheckpoint(checkpoint, null)).toBe(false);
    expect(isCheckpoint({ ...checkpoint, lastTx: '999' }, seal1)).toBe(false);
    expect(isCheckpoint({ ...checkpoint, lastId: id(9) }, seal1)).toBe(false);
    expect(isCheckpoint({ ...checkpoint, retention: null }, seal1)).toBe(false);
  });
});

describe('verify checks: rows against their seals, in words', () => {
  afterEach(() => jest.restoreAllMocks());

  it('checks untouched seals without reading their manifests into a map', () => {
    const read = jest.spyOn(sealModule, 'readManifest');
    expect(rowFindings(all())).toEqual([]);
    expect(read).not.toHaveBeenCalled();
    rowFindings([...all().slice(0, 4), row(5, 805n, 'nda_deleted')]);
    expect(read).toHaveBeenCalledTimes(1);
  });

  it('checks the id of each row, not only its leaf', () => {
    const rows = all();
    // The sealed leaf under another id, of the same length or not.
    const other = { ...rows[4], id: id(0) };
    expect(said(rowFindings([...rows.slice(0, 4), other]))).toEqual([
      `row_forged ${id(0)}: in the range of seal 2 but not sealed by it`,
      `row_missing ${id(5)}: sealed by seal 2, no longer in the table`,
    ]);
    const shorter = { ...rows[4], id: id(5).slice(0, 35) };
    expect(said(rowFindings([...rows.slice(0, 4), shorter]))).toContain(`row_missing ${id(5)}: sealed by seal 2, no longer in the table`);
    const longer = { ...rows[4], tx: 804n, id: `${id(5)}0` };
    expect(said(rowFindings([...rows.slice(0, 4), longer]))).toContain(`row_missing ${id(5)}: sealed by seal 2, no longer in the table`);
  });

  it('says how each row differs from its seal', () => {
    const rows = all();
    const problem = 'its occurred_at is not a time';
    expect(said(rowFindings([rows[0], { ...rows[1], problem }, ...rows.slice(2)]))).toEqual([
      `row_invalid ${id(2)}: ${problem} (sealed by seal 1)`,
    ]);
    const changed = { ...row(2, 802n, 'nda_deleted'), problem };
    expect(said(rowFindings([rows[0], changed, ...rows.slice(2)]))).toEqual([
      `row_changed ${id(2)}: differs from what seal 1 sealed: ${problem}`,
    ]);
    const added = { ...row(6), tx: 803n, problem };
    expect(said(rowFindings([...rows, added]))).toEqual([`row_invalid ${id(6)}: ${problem}: never sealed (in the range of seal 2)`]);
    // Out of order (a forged row among them): a row that can never be sealed is still named.
    const forged = { ...row(6), tx: 803n };
    expect(said(rowFindings([...rows.slice(0, 3), { ...rows[3], problem }, rows[4], forged]))).toEqual([
      `row_forged ${id(6)}: in the range of seal 2 but not sealed by it`,
      `row_invalid ${id(4)}: ${problem} (sealed by seal 2)`,
    ]);
  });

  it('checks no root over a seal with a changed row and a missing one, and names a root that fails in words', () => {
    const rows = all();
    expect(said(rowFindings([...rows.slice(0, 3), row(4, 804n, 'nda_deleted')]))).toEqual([
      `row_changed ${id(4)}: differs from what seal 2 sealed`,
      `row_missing ${id(5)}: sealed by seal 2, no longer in the table`,
    ]);
    const found = [[], []] as Anomaly[][];
    checkSealedRows([seal1, { ...seal2, root: Buffer.alloc(32, 7) }], rows, found, new Map());
    expect(said(found.flat())).toEqual(['seal_changed 2: its Merkle root does not match its rows']);
  });

  it('takes the second row of a seal removed by retention as gone', () => {
    const rows = all().filter((r) => r.id !== id(5));
    expect(rowFindings(rows, new Map([[2, Buffer.from([0b0100_0000])]]))).toEqual([]);
  });

  it('names a row once when its seal check and its entry check both find it', () => {
    const rows = all();
    const entry = (n: number): Anomaly => ({ kind: 'row_forged', row: id(n), detail: 'its entry code does not match' });
    const changed = { ...row(4, 804n, 'nda_deleted'), forged: entry(4) };
    expect(said(rowFindings([...rows.slice(0, 3), changed, { ...rows[4], forged: entry(5) }]))).toEqual([
      `row_changed ${id(4)}: differs from what seal 2 sealed`,
      `row_forged ${id(5)}: its entry code does not match`,
    ]);
  });

  it('names a row after the last seal, and its entry finding', () => {
    const late = { ...row(9), forged: { kind: 'row_forged' as const, row: id(9), detail: 'no code' } };
    expect(said(rowFindings([...all(), late]))).toEqual([
      `row_forged ${id(9)}: no code`,
      `row_forged ${id(9)}: in the range of seal 2 but after its last row`,
    ]);
  });

  it('sorts rows from before integrity (no tx) into a seal that ends on one', () => {
    const legacy = [1, 2].map((n) => row(n, null));
    const seal = sealOf(1, legacy, null);
    const found: Anomaly[][] = [[]];
    checkSealedRows([seal], [legacy[1], legacy[0]], found, new Map());
    expect(found).toEqual([[]]);
  });
});

describe('verify checks: rows after the newest seal, in words', () => {
  const tail = { id: id(7), tx: '900', problem: null, forged: null };

  it('takes the horizon itself as not yet sealed, and one below it as backdated', () => {
    expect(judgeTailRow({ ...tail, tx: seal2.horizon }, seal2, '1000')).toBeNull();
    expect(judgeTailRow({ ...tail, tx: '805' }, seal2, '1000')).toEqual({
      kind: 'row_forged',
      row: id(7),
      detail: 'after the newest seal but older than its horizon',
    });
  });

  it('judges a row without a tx by what the newest seal ends on', () => {
    const none = { ...tail, tx: null };
    const legacy = sealOf(1, [row(1, null)], null);
    expect(judgeTailRow(none, legacy, '1000')).toBeNull();
    expect(judgeTailRow(none, { ...legacy, horizon: '5' }, '1000')?.kind).toBe('row_forged');
    expect(judgeTailRow(none, { ...seal2, horizon: '0' }, '1000')?.kind).toBe('row_forged');
  });

  it('says a row is from the future, or never sealable, in words', () => {
    expect(judgeTailRow(tail, seal2, '900')).toEqual({
      kind: 'row_forged',
      row: id(7),
      detail: 'its transaction id 900 is from the future (no transaction has had one from 900 on)',
    });
    expect(judgeTailRow(tail, seal2, '901')).toBeNull();
    expect(judgeTailRow({ ...tail, problem: 'bad time' }, seal2, '1000')).toEqual({
      kind: 'row_invalid',
      row: id(7),
      detail: 'bad time: never sealed',
    });
  });
});

describe('verify checks: the chain and the report, in words', () => {
  it('names at most 1000 seqs a chain skips at once', () => {
    const found = new SealChain({}, new EntryChecks(null)).next({ ...seal2, seq: 2000 }).found.filter((a) => a.kind === 'seal_missing');
    expect(found).toHaveLength(1000);
    expect(found[0]).toEqual({ kind: 'seal_missing', seal: 1, detail: 'absent from audit_seal: the chain skips it' });
    expect(found[999].seal).toBe(1000);
  });

  it("gives each seal's own findings and those of its entry-authentication boundary", () => {
    const chain = new SealChain({}, new EntryChecks(null));
    const first = sealOf(1, [row(1)], null, { entryAuthFrom: '100' });
    expect(chain.next(first).found).toEqual([]);
    const moved = sealOf(2, [row(2)], first, { entryAuthFrom: '200' });
    expect(said(chain.next({ ...moved, rowCount: 5 }).found)).toEqual([
      'seal_changed 2: its fields do not match its hash',
      "seal_changed 2: its entry-authentication boundary (200) is not seal 1's (100)",
    ]);
  });

  it('names a witnessed seal the chain lacks in words, and none without a witness', () => {
    expect(new SealChain({}, new EntryChecks(null)).unwitnessed('audit_seal')).toEqual([]);
    const chain = new SealChain({ witness: new Map([[3, [line(3, 'ab', 'cd')]]]) }, new EntryChecks(null));
    expect(said(chain.unwitnessed('audit_seal'))).toEqual([
      `seal_missing 3: in the witness (2 rows, last row ${id(5)}) but not in audit_seal`,
    ]);
  });

  it('starts a report at zero everywhere', () => {
    expect(emptyReport()).toEqual({
      rowsVerified: 0,
      sealsVerified: 0,
      rowsUnsealed: 0,
      anomalies: [],
      anomalyCount: 0,
      byKind: Object.fromEntries(ANOMALY_KINDS.map((k) => [k, 0])),
      entryAuth: { checked: false, boundary: null, authentic: 0, beforeAuthentication: 0, unchecked: 0 },
      retention: { checkpoints: 0, months: [], rows: 0 },
      erasure: { erasedRows: 0, erasureEntries: 0 },
    });
  });

  it('names a row moved only when it is both missing and forged, and leaves its other findings as they are', () => {
    const a: Anomaly[] = [
      { kind: 'row_missing', row: id(1), detail: 'm' },
      { kind: 'row_forged', row: id(2), detail: 'f' },
      { kind: 'row_changed', row: id(3), detail: 'c' },
      { kind: 'row_missing', row: id(3), detail: 'm' },
    ];
    expect(said(finishReport(emptyReport(), a).anomalies)).toEqual([
      `row_missing ${id(1)}: m`,
      `row_forged ${id(2)}: f`,
      `row_changed ${id(3)}: c`,
      `row_missing ${id(3)}: m`,
    ]);
    const moved: Anomaly[] = [
      { kind: 'row_invalid', row: id(4), detail: 'i' },
      { kind: 'row_missing', row: id(4), detail: 'm' },
      { kind: 'row_forged', row: id(4), detail: 'f' },
    ];
    const report = finishReport(emptyReport(), moved);
    expect(said(report.anomalies)).toEqual([`row_invalid ${id(4)}: i`, `row_changed ${id(4)}: moved out of its seal (f)`]);
    expect(report.anomalyCount).toBe(2);
  });

  it('keeps the first 100 000 findings and counts them all', () => {
    const found = Array.from({ length: 100_001 }, (_, i): Anomaly => ({ kind: 'seal_changed', seal: i, detail: 'x' }));
    const report = finishReport(emptyReport(), found);
    expect(report.anomalies).toHaveLength(100_000);
    expect(report.anomalyCount).toBe(100_001);
    expect(report.byKind.seal_changed).toBe(100_001);
  });
});
