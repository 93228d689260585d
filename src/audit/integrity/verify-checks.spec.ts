import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { EntryChecks } from './entry-checks';
import { merkleRoot } from './merkle';
import { leafHash } from './row-encoding';
import { GENESIS_HASH, keyIdOf, manifestEntry, type Seal, sealHash, signSeal } from './seal';
import {
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

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const id = (n: number) => `01937a4c-0000-7000-8000-${String(n).padStart(12, '0')}`;
const fields = (n: number, action = 'nda_created') => [id(n), String(800 + n), '1764300000000000', action, 'nda', `nda-${n}`];

/** A row as the checks take it, from its fields. */
function leafRow(n: number, action?: string): LeafRow {
  const row = fields(n, action);
  return { id: row[0], tx: BigInt(row[1]), leaf: leafHash(row), problem: null, forged: null };
}

/** A signed seal of rows `ns` after `previous`. */
function sealOf(seq: number, ns: number[], previous: Seal | null): Seal {
  const rows = ns.map((n) => leafRow(n));
  const last = fields(ns[ns.length - 1]);
  const unsigned = {
    seq,
    version: 1,
    prevHash: previous ? previous.hash : GENESIS_HASH,
    lastTx: last[1],
    lastId: last[0],
    horizon: String(Number(last[1]) + 1),
    rowCount: rows.length,
    root: merkleRoot(rows.map((r) => r.leaf)),
    manifest: Buffer.concat(rows.map((r) => manifestEntry(r.id, r.leaf))),
    sealedAt: 1764300000000 + seq,
  };
  const hash = sealHash(unsigned);
  return { ...unsigned, hash, keyId: keyIdOf(publicKey), signature: signSeal(hash, privateKey) };
}

const seal1 = sealOf(1, [1, 2, 3], null);
const seal2 = sealOf(2, [4, 5], seal1);

function rowFindings(rows: LeafRow[], retained = new Map<number, Buffer>()): Anomaly[] {
  const found = [seal1, seal2].map((): Anomaly[] => []);
  checkSealedRows([seal1, seal2], rows, found, retained);
  return found.flat();
}

function sealFindings(seal: Seal, previous: Seal | null, witness?: Map<number, WitnessedSeal[]>): Anomaly[] {
  const found: Anomaly[] = [];
  checkSeal(seal, previous, { publicKey, witness }, (a) => found.push(a));
  return found;
}

const kinds = (found: Anomaly[]) => found.map((a) => `${a.kind} ${a.row ?? a.seal}`);

describe('verify checks: rows against their seals', () => {
  it('finds nothing in the rows each seal sealed, in any order', () => {
    expect(rowFindings([5, 1, 4, 3, 2].map((n) => leafRow(n)))).toEqual([]);
  });

  it('names a changed row, a removed row and an added row', () => {
    const all = [1, 2, 3, 4, 5].map((n) => leafRow(n));
    expect(kinds(rowFindings([...all.slice(0, 1), leafRow(2, 'nda_deleted'), ...all.slice(2)]))).toEqual([`row_changed ${id(2)}`]);
    expect(kinds(rowFindings(all.filter((r) => r.id !== id(4))))).toEqual([`row_missing ${id(4)}`]);
    const added = { ...leafRow(6), tx: 803n };
    expect(kinds(rowFindings([...all, added]))).toEqual([`row_forged ${id(6)}`]);
    expect(kinds(rowFindings([...all, leafRow(9)]))).toEqual([`row_forged ${id(9)}`]);
  });

  it('names a root that does not match rows that match the manifest', () => {
    const changedRoot = { ...seal2, root: Buffer.alloc(32, 7) };
    const found = [[], []] as Anomaly[][];
    checkSealedRows(
      [seal1, changedRoot],
      [1, 2, 3, 4, 5].map((n) => leafRow(n)),
      found,
      new Map(),
    );
    expect(kinds(found.flat())).toEqual(['seal_changed 2']);
  });

  it('takes a row a retention checkpoint removed as gone, not missing', () => {
    const rows = [1, 2, 3, 5].map((n) => leafRow(n));
    expect(rowFindings(rows, new Map([[2, Buffer.from([0b1000_0000])]]))).toEqual([]);
    expect(kinds(rowFindings(rows, new Map([[2, Buffer.from([0b0100_0000])]])))).toEqual([`row_missing ${id(4)}`]);
  });

  it('names a row that can never be sealed, and a forged row found by its entry check', () => {
    const invalid = { ...leafRow(2), problem: 'its occurred_at is not a time' };
    const forged = { ...leafRow(3), forged: { kind: 'row_forged' as const, row: id(3), detail: 'its entry code does not match' } };
    expect(kinds(rowFindings([leafRow(1), invalid, forged, leafRow(4), leafRow(5)]))).toEqual([
      `row_invalid ${id(2)}`,
      `row_forged ${id(3)}`,
    ]);
  });
});

describe('verify checks: seals and the chain', () => {
  it('finds nothing in a signed seal linked to the one before', () => {
    expect(sealFindings(seal1, null)).toEqual([]);
    expect(sealFindings(seal2, seal1)).toEqual([]);
  });

  it('names a changed field, a broken link and a bad, missing or foreign signature', () => {
    expect(kinds(sealFindings({ ...seal2, rowCount: 3 }, seal1))).toEqual(['seal_changed 2']);
    expect(kinds(sealFindings({ ...seal2, sealedAt: NaN }, seal1))).toEqual(['seal_changed 2']);
    expect(kinds(sealFindings(seal2, { ...seal1, hash: Buffer.alloc(32) }))).toEqual(['seal_out_of_chain 2']);
    expect(kinds(sealFindings({ ...seal2, signature: seal1.signature }, seal1))).toEqual(['seal_signature_invalid 2']);
    expect(sealFindings({ ...seal2, signature: null }, seal1)[0].detail).toBe('it is not signed');
    const other = generateKeyPairSync('ed25519').publicKey;
    expect(sealFindings({ ...seal2, keyId: keyIdOf(other) }, seal1)[0].detail).toContain('signed with key');
    expect(keyIdOf(createPublicKey(privateKey))).toBe(seal2.keyId);
  });

  it('names a seal the witness tells otherwise, and a witnessed seal the chain lacks', () => {
    const line = (seal: Seal): WitnessedSeal[] => [
      {
        trail: 't',
        seq: seal.seq,
        hash: seal.hash.toString('hex'),
        prevHash: seal.prevHash.toString('hex'),
        rows: 2,
        lastId: seal.lastId,
        sealedAt: '',
      },
    ];
    const witness = new Map([
      [1, line(seal1)],
      [2, line(seal2)],
      [3, [{ ...line(seal2)[0], seq: 3, prevHash: seal2.hash.toString('hex') }]],
    ]);
    expect(sealFindings(seal2, seal1, witness)).toEqual([]);
    expect(kinds(sealFindings(seal1, null, new Map([[2, [{ ...line(seal2)[0], prevHash: 'ab' }]]])))).toEqual(['seal_witness_mismatch 1']);
    const chain = new SealChain({ witness }, new EntryChecks(null));
    expect(chain.next(seal1).found).toEqual([]);
    expect(chain.next(seal2)).toEqual({ found: [], checkpoint: false, previous: seal1 });
    expect(kinds(chain.unwitnessed('the archive'))).toEqual(['seal_missing 3']);
  });

  it('names the seqs a chain skips, from where a segment starts', () => {
    const chain = new SealChain({}, new EntryChecks(null), 2);
    expect(kinds(chain.next({ ...seal2, seq: 4 }).found)).toContain('seal_missing 2');
    expect(new SealChain({}, new EntryChecks(null), 2).next(seal2).found).toEqual([]);
  });

  it('tells a retention checkpoint from a seal changed to look like one', () => {
    const mark = { month: '2026-01', rows: 1, covered: null };
    expect(isCheckpoint({ ...seal2, rowCount: 0, lastTx: seal1.lastTx, lastId: seal1.lastId, retention: mark }, seal1)).toBe(true);
    expect(isCheckpoint({ ...seal2, rowCount: 0, retention: mark }, seal1)).toBe(false);
    expect(isCheckpoint({ ...seal2, rowCount: 0, lastTx: seal1.lastTx, lastId: seal1.lastId }, seal1)).toBe(false);
  });
});

describe('verify checks: rows after the newest seal, and the report', () => {
  it('judges a tail row by its horizon, the snapshot and its own checks', () => {
    const row = { id: id(7), tx: '900', problem: null, forged: null };
    expect(judgeTailRow(row, seal2, '1000')).toBeNull();
    expect(judgeTailRow({ ...row, tx: '804' }, seal2, '1000')?.detail).toContain('older than its horizon');
    expect(judgeTailRow({ ...row, tx: null }, seal2, '1000')?.kind).toBe('row_forged');
    expect(judgeTailRow({ ...row, tx: null }, null, '1000')).toBeNull();
    expect(judgeTailRow(row, seal2, '900')?.detail).toContain('from the future');
    expect(judgeTailRow({ ...row, problem: 'bad time' }, seal2, '1000')?.kind).toBe('row_invalid');
    const forged = { kind: 'row_forged' as const, row: id(7), detail: 'no code' };
    expect(judgeTailRow({ ...row, forged }, seal2, '1000')).toBe(forged);
  });

  it('counts findings by kind and names a row moved between seals changed, once', () => {
    const found: Anomaly[] = [
      { kind: 'row_missing', row: id(4), detail: 'sealed by seal 2' },
      { kind: 'row_forged', row: id(4), detail: 'in the range of seal 3' },
      { kind: 'seal_changed', seal: 3, detail: 'x' },
    ];
    const report = finishReport(emptyReport(), found);
    expect(report.anomalyCount).toBe(2);
    expect(report.byKind).toMatchObject({ row_changed: 1, row_missing: 0, row_forged: 0, seal_changed: 1 });
    expect(report.anomalies[0].detail).toBe('moved out of its seal (in the range of seal 3)');
  });
});
