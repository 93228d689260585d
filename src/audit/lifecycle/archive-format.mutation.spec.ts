import { type AuditRecord } from '../audit-entry';
import { entryDigest } from '../integrity/entry-encoding';
import { leafHash } from '../integrity/row-encoding';
import { GENESIS_HASH, type Seal, sealHash } from '../integrity/seal';
import {
  ARCHIVE_FORMAT,
  archiveFiles,
  type ArchivedSeal,
  fromArchivedSeal,
  rowEntryDigest,
  rowLeaf,
  rowProblem,
  toArchivedSeal,
} from './archive-format';

const id = '01937a4c-0000-7000-8000-00000000000a';
const commitments = '[[["user_id"],"c1"]]';
/** An entry with personal values kept apart (entry and leaf version 2), and the sealed columns of its row. */
const record: AuditRecord = {
  id,
  occurredAt: '2026-01-05T10:00:00.123Z',
  action: 'nda_created',
  entityType: 'Nda',
  entityId: 'nda-1',
  userId: 'u-1',
  outcome: 'success',
  ip: null,
  userAgent: null,
  requestId: 'req-1',
  changes: { title: 'Ünïcode' },
  metadata: null,
  commitments,
};
const v2Fields = [
  id,
  '812',
  '1767607200123000',
  'nda_created',
  'Nda',
  'nda-1',
  'u-1',
  'success',
  null,
  null,
  'req-1',
  '{"title": "Ünïcode"}',
  null,
  '1767607200200000',
  commitments,
];

const FIRST_US = '-62135596800000000';
const LAST_US = '253402300799999999';
const at = (us: string | null, column: 2 | 13 = 2) => v2Fields.map((f, i) => (i === column ? us : f));

describe('archive format: names and marks', () => {
  it('names a month’s two files, and marks its seals file with the format it was written in', () => {
    expect(archiveFiles('2026-01')).toEqual({ rows: 'audit-2026-01.ndjson.gz', seals: 'audit-2026-01.seals.json' });
    // Archives already written carry this mark: it cannot change without a new reader.
    expect(ARCHIVE_FORMAT).toBe('audit-archive-v1');
  });
});

describe('archive format: a row’s entry digest and leaf', () => {
  it('computes the version-2 entry digest of a row with commitments, as the entry had it', () => {
    expect(rowEntryDigest(v2Fields).equals(entryDigest(record))).toBe(true);
    expect(rowEntryDigest(v2Fields.map((f, i) => (i === 14 ? '[]' : f))).equals(entryDigest(record))).toBe(false);
  });

  it('takes a row of 14 columns (no commitments column) as version 1, as one whose commitments are NULL', () => {
    const v1 = v2Fields.map((f, i) => (i === 14 ? null : f));
    expect(rowEntryDigest(v1.slice(0, 14)).equals(rowEntryDigest(v1))).toBe(true);
    expect(rowLeaf(v1.slice(0, 14)).equals(leafHash(v1))).toBe(true);
    expect(rowEntryDigest(v1).equals(entryDigest({ ...record, commitments: undefined, ip: null }))).toBe(true);
  });

  it('hashes rows longer than its buffer one after another, each as the seal does', () => {
    const long = v2Fields.map((f, i) => (i === 11 ? JSON.stringify({ body: 'é'.repeat(70_000) }) : f));
    const longer = v2Fields.map((f, i) => (i === 11 ? JSON.stringify({ body: '€'.repeat(90_000) }) : f));
    for (const row of [long, v2Fields, longer, long]) expect(rowLeaf(row).equals(leafHash(row))).toBe(true);
  });
});

describe('archive format: a row that can never be sealed', () => {
  it.each([
    ['the first microsecond of year 1', FIRST_US],
    ['the last microsecond of year 9999', LAST_US],
    ['a time of 17 digits', '100000000000000000'],
    ['a time before 1970', '-1000'],
  ])('takes %s', (_what, us) => {
    expect(rowProblem(at(us))).toBeNull();
    expect(rowProblem(at(us, 13))).toBeNull();
  });

  it.each([
    ['before year 1', '-62135596800000001'],
    ['after year 9999', '253402300800000000'],
    ['an exponent', '1e15'],
    ['text before the digits', 'x15'],
    ['text after the digits', '15x'],
    ['a fraction', '15.5x'],
  ])('names a time %s', (_what, us) => {
    expect(rowProblem(at(us))).toBe(`its occurred_at (${us} µs) is not a time in the years 1 to 9999`);
    expect(rowProblem(at(us, 13))).toBe(`its recorded_at (${us} µs) is not a time in the years 1 to 9999`);
  });

  it('names a tx below 3, and takes 3 and a row without one', () => {
    expect(rowProblem(v2Fields.map((f, i) => (i === 1 ? '2' : f)))).toBe("its tx (2) is no transaction's id");
    expect(rowProblem(v2Fields.map((f, i) => (i === 1 ? '3' : f)))).toBeNull();
    expect(rowProblem(v2Fields.map((f, i) => (i === 1 ? null : f)))).toBeNull();
  });
});

const fields = {
  seq: 4,
  version: 2,
  prevHash: GENESIS_HASH,
  lastTx: '812',
  lastId: id,
  horizon: '813',
  rowCount: 0,
  root: Buffer.alloc(32, 7),
  manifest: Buffer.alloc(24, 9),
  sealedAt: 1767607201000,
  entryAuthFrom: '700',
  retention: null,
};
const seal: Seal = { ...fields, hash: sealHash(fields), keyId: null, signature: null };
const stored = (changes: Partial<Seal> = {}): ArchivedSeal =>
  JSON.parse(JSON.stringify(toArchivedSeal({ ...seal, ...changes }))) as ArchivedSeal;

describe('archive format: seals stored and read back', () => {
  it('stores an unsigned seal, a seal from before entry keys and a first seal, and reads each back the same', () => {
    expect(stored()).toMatchObject({ signature: null, keyId: null, lastTx: '812', entryAuthFrom: '700' });
    expect(fromArchivedSeal(stored())).toEqual(seal);
    const before: Seal = { ...seal };
    delete before.entryAuthFrom;
    expect(toArchivedSeal(before).entryAuthFrom).toBeNull();
    expect(fromArchivedSeal({ ...stored(), entryAuthFrom: undefined } as unknown as ArchivedSeal).entryAuthFrom).toBeNull();
    expect(fromArchivedSeal(stored({ lastTx: null, entryAuthFrom: null }))).toEqual({ ...seal, lastTx: null, entryAuthFrom: null });
  });

  it.each([
    [
      'with its covered rows and carried erasures',
      { month: '2026-01', rows: 5000, covered: Buffer.alloc(6, 1), erasures: '{"erased":{}}' },
    ],
    ['without covered rows, erasures NULL', { month: '2026-01', rows: 0, covered: null, erasures: null }],
    ['from before erasures were carried', { month: '2026-01', rows: 5, covered: Buffer.alloc(2, 3) }],
  ])('stores a retention checkpoint %s and reads it back the same', (_what, retention) => {
    const checkpoint = { ...seal, retention };
    const back = fromArchivedSeal(stored(checkpoint));
    expect(back).toEqual(checkpoint);
    expect('erasures' in (back.retention as object)).toBe('erasures' in retention);
    expect(stored(checkpoint).retention).toEqual({
      ...retention,
      covered: retention.covered?.toString('hex') ?? null,
    });
  });

  it.each([
    ['prevHash', { prevHash: 1 }],
    ['lastTx', { lastTx: 812 }],
    ['lastId', { lastId: null }],
    ['horizon', { horizon: 813 }],
    ['root', { root: null }],
    ['manifest', { manifest: 5 }],
    ['hash', { hash: [] }],
    ['keyId', { keyId: 3 }],
    ['signature', { signature: {} }],
    ['entryAuthFrom', { entryAuthFrom: 700 }],
    ['retention month', { retention: { month: 1, rows: 0, covered: null } }],
    ['retention covered', { retention: { month: '2026-01', rows: 0, covered: 6 } }],
    ['retention erasures', { retention: { month: '2026-01', rows: 0, covered: null, erasures: {} } }],
  ])('names a seal whose %s is not text', (name, change) => {
    expect(() => fromArchivedSeal({ ...stored(), ...change } as unknown as ArchivedSeal)).toThrow(
      new Error(`seal 4: its ${name} is not text`),
    );
  });

  it.each([
    ['no seal at all', null],
    ['a seal without seq', { ...stored(), seq: undefined }],
    ['a seal whose seq is a fraction', { ...stored(), seq: 4.5 }],
    ['a seal whose seq is text', { ...stored(), seq: '4' }],
  ])('refuses %s', (_what, value) => {
    expect(() => fromArchivedSeal(value as unknown as ArchivedSeal)).toThrow(new Error('a seal without a whole-number seq'));
  });
});
