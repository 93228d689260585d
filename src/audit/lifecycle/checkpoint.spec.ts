import fc from 'fast-check';
import { generateKeyPairSync } from 'node:crypto';
import { GENESIS_HASH, sealHash, signSeal, verifySeal } from '../integrity/seal';
import { decodeRetained, encodeRetained, hasBit, mergeRetained, setBit } from './checkpoint';

describe('a retention checkpoint', () => {
  it('encodes which rows of which seals went, and reads them back', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.integer({ min: 1, max: 1e9 }).map(String), fc.uint8Array({ maxLength: 40 })), (input) => {
        const rows = new Map(Object.entries(input).map(([seq, bytes]) => [Number(seq), Buffer.from(bytes)]));
        expect(decodeRetained(encodeRetained(rows))).toEqual(rows);
      }),
    );
  });

  it('sets, reads and merges bits, most significant first', () => {
    const bitmap = Buffer.alloc(2);
    setBit(bitmap, 0);
    setBit(bitmap, 9);
    expect([...bitmap]).toEqual([0x80, 0x40]);
    expect([0, 1, 9, 16].map((i) => hasBit(bitmap, i))).toEqual([true, false, true, false]);
    expect(hasBit(undefined, 0)).toBe(false);
    const all = new Map([[3, Buffer.from([0x80])]]);
    mergeRetained(
      all,
      new Map([
        [3, Buffer.from([0x01, 0x02])],
        [4, Buffer.from([0xff])],
      ]),
    );
    expect(all).toEqual(
      new Map([
        [3, Buffer.from([0x81, 0x02])],
        [4, Buffer.from([0xff])],
      ]),
    );
  });

  it("has a hash that covers its month, rows and covered seal, and leaves a seal's hash as it was", () => {
    const seal = {
      seq: 7,
      version: 1,
      prevHash: GENESIS_HASH,
      lastTx: '812',
      lastId: '0190c9b8-0000-7000-8000-000000000001',
      horizon: '813',
      rowCount: 0,
      root: Buffer.alloc(32, 1),
      manifest: Buffer.alloc(0),
      sealedAt: 1_764_300_000_000,
    };
    const plain = sealHash(seal);
    expect(sealHash({ ...seal, retention: null }).equals(plain)).toBe(true);
    const checkpoint = { ...seal, retention: { month: '2026-01', rows: 3, covered: Buffer.alloc(32, 2) } };
    const hash = sealHash(checkpoint);
    expect(hash.equals(plain)).toBe(false);
    for (const retention of [
      { month: '2026-02', rows: 3, covered: Buffer.alloc(32, 2) },
      { month: '2026-01', rows: 4, covered: Buffer.alloc(32, 2) },
      { month: '2026-01', rows: 3, covered: null },
    ]) {
      expect(sealHash({ ...seal, retention }).equals(hash)).toBe(false);
    }
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    expect(verifySeal(hash, signSeal(hash, privateKey), publicKey)).toBe(true);
  });
});
