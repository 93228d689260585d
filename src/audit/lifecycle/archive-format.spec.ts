import { generateKeyPairSync } from 'node:crypto';
import { type AuditRecord } from '../audit-entry';
import { entryDigest } from '../integrity/entry-encoding';
import { leafHash } from '../integrity/row-encoding';
import { keyIdOf, manifestEntry, sealHash, signSeal, GENESIS_HASH } from '../integrity/seal';
import { fromArchivedSeal, rowEntryDigest, rowLeaf, rowProblem, toArchivedSeal } from './archive-format';
import { sealsPathOf } from './archive-verifier';

const id = '01937a4c-0000-7000-8000-00000000000a';
const record: AuditRecord = {
  id,
  occurredAt: '2026-01-05T10:00:00.123Z',
  action: 'nda_created',
  entityType: 'Nda',
  entityId: 'nda-1',
  userId: 'ü-1',
  outcome: 'success',
  ip: '203.0.113.7',
  userAgent: null,
  requestId: 'req-1',
  changes: { after: { title: 'Ünïcode' } },
  metadata: null,
};
/** The record's row as PostgreSQL gives back its sealed columns, with `auth_code` and `personal`. */
const fields = [
  id,
  '812',
  '1767607200123000',
  'nda_created',
  'Nda',
  'nda-1',
  'ü-1',
  'success',
  '203.0.113.7',
  null,
  'req-1',
  '{"after": {"title": "Ünïcode"}}',
  null,
  '1767607200200000',
  null,
  null,
  null,
];

describe('archive format', () => {
  it('hashes a row as the seal does, version 1 and version 2', () => {
    expect(rowLeaf(fields).equals(leafHash(fields.slice(0, 15)))).toBe(true);
    const v2 = [...fields.slice(0, 14), '[[["user_id"],"c1"]]', null, '{"salt":"s","values":[]}'];
    expect(rowLeaf(v2).equals(leafHash(v2.slice(0, 15)))).toBe(true);
    expect(rowLeaf(v2).equals(rowLeaf(fields))).toBe(false);
    const long = [...fields.slice(0, 11), 'x'.repeat(100_000), ...fields.slice(12)];
    expect(rowLeaf(long).equals(leafHash(long.slice(0, 15)))).toBe(true);
  });

  it('computes the entry digest from the stored row as the entry had it at birth', () => {
    expect(rowEntryDigest(fields).equals(entryDigest(record))).toBe(true);
    expect(rowEntryDigest([...fields.slice(0, 3), 'nda_deleted', ...fields.slice(4)]).equals(entryDigest(record))).toBe(false);
  });

  it('names a row that can never be sealed as the database does', () => {
    expect(rowProblem(fields)).toBeNull();
    expect(rowProblem([fields[0], '812', '-62135596800000000', ...fields.slice(3)])).toBeNull();
    expect(rowProblem([fields[0], '812', '-62135596800000001', ...fields.slice(3)])).toContain('its occurred_at');
    expect(rowProblem([...fields.slice(0, 13), '253402300800000000', null])).toContain('its recorded_at');
    expect(rowProblem([fields[0], '812', null, ...fields.slice(3)])).toContain('not finite');
    expect(rowProblem([fields[0], '2', ...fields.slice(2)])).toBe("its tx (2) is no transaction's id");
  });

  it('stores a seal and reads it back the same, its hash and signature still good', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const leaf = leafHash(fields.slice(0, 15));
    const unsigned = {
      seq: 4,
      version: 2,
      prevHash: GENESIS_HASH,
      lastTx: '812',
      lastId: id,
      horizon: '813',
      rowCount: 1,
      root: leaf,
      manifest: manifestEntry(id, leaf),
      sealedAt: 1767607201000,
      entryAuthFrom: '700',
      retention: null,
    };
    const hash = sealHash(unsigned);
    const seal = { ...unsigned, hash, keyId: keyIdOf(publicKey), signature: signSeal(hash, privateKey) };
    const back = fromArchivedSeal(JSON.parse(JSON.stringify(toArchivedSeal(seal))));
    expect(back).toEqual(seal);
    expect(sealHash(back).equals(hash)).toBe(true);
    expect(fromArchivedSeal(toArchivedSeal({ ...seal, sealedAt: Number.NaN })).sealedAt).toBeNaN();
    expect(() => fromArchivedSeal({ ...toArchivedSeal(seal), root: 7 as unknown as string })).toThrow('seal 4: its root is not text');
  });

  it('finds the seals file from either file of the pair', () => {
    expect(sealsPathOf('/a/audit-2026-01.ndjson.gz')).toBe('/a/audit-2026-01.seals.json');
    expect(sealsPathOf('/a/audit-2026-01.seals.json')).toBe('/a/audit-2026-01.seals.json');
    expect(sealsPathOf('/a/other.json')).toBe('/a/other.json');
  });
});
