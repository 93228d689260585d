import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { EMPTY_ROOT } from './merkle';
import { GENESIS_HASH, keyIdOf, type Seal, sealHash, signSeal } from './seal';
import { distrustSeal, SEAL_UNTRUSTED_CODE, type SealTrustContext, TX_BEHIND_CHAIN_CODE, UntrustedSealError } from './seal-trust';

const { privateKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519').privateKey;

/** Seal 2, its hash over its fields, signed with `key` unless null. */
function seal(fields: Partial<Seal> = {}, key: typeof privateKey | null = privateKey): Seal {
  const unsigned = {
    seq: 2,
    version: 2,
    prevHash: GENESIS_HASH,
    lastTx: '900',
    lastId: '01937a4c-0000-7000-8000-00000000000a',
    horizon: '901',
    rowCount: 0,
    root: EMPTY_ROOT,
    manifest: Buffer.alloc(0),
    sealedAt: 1764300000123,
    entryAuthFrom: '800',
    ...fields,
  };
  const hash = sealHash(unsigned);
  return { ...unsigned, hash, keyId: key ? keyIdOf(key) : null, signature: key ? signSeal(hash, key) : null };
}

const context: SealTrustContext = { signingKey: privateKey, signedSeq: 2, boundary: { seq: 1, from: '800' }, nextTx: 1000n };

describe('the seals a sealer builds on', () => {
  it('continues a seal signed with its key, with the first boundary, below the server ids', () => {
    expect(distrustSeal(seal(), context)).toBeNull();
    expect(distrustSeal(seal({ horizon: '1000', lastTx: '999' }), context)).toBeNull();
    expect(distrustSeal(seal({ entryAuthFrom: null }), { ...context, boundary: null })).toBeNull();
    // The first seal made with entry keys records the boundary: it is the first.
    expect(distrustSeal(seal({ entryAuthFrom: '900' }), { ...context, boundary: { seq: 2, from: '900' } })).toBeNull();
  });

  it('continues an unsigned seal on a chain never signed, with or without a key (signing just turned on)', () => {
    const unsigned = seal({}, null);
    expect(distrustSeal(unsigned, { ...context, signedSeq: null })).toBeNull();
    expect(distrustSeal(unsigned, { ...context, signingKey: null, signedSeq: null })).toBeNull();
  });

  it.each([
    ['its fields changed after hashing', { ...seal(), horizon: '950' }, context, 'seal 2 does not match its own hash'],
    ['a sealed_at not finite', { ...seal(), sealedAt: Number.NaN }, context, 'seal 2 does not match its own hash'],
    ['unsigned after a signed seal', seal({}, null), { ...context, signedSeq: 1 }, 'seal 2 is not signed, while seal 1 before it is'],
    [
      'unsigned after a signed seal, no key',
      seal({}, null),
      { ...context, signingKey: null, signedSeq: 1 },
      'seal 2 is not signed, while seal 1 before it is',
    ],
    ['signed with another key', seal({}, other), context, `seal 2 is signed with key ${keyIdOf(other)}, not with this sealer's key`],
    [
      'a signature that does not verify',
      { ...seal(), signature: randomBytes(64) },
      context,
      `seal 2 is signed with key ${keyIdOf(privateKey)}, but its signature does not verify`,
    ],
    [
      'signed, the sealer without a key',
      seal(),
      { ...context, signingKey: null },
      "and no signing key is given (integrity.signingKey, or audit-retention's --signing-key)",
    ],
    [
      'a moved boundary',
      seal({ entryAuthFrom: '4000' }),
      context,
      'seal 2 moves the entry-authentication boundary (4000, seal 1 recorded 800)',
    ],
    [
      'a dropped boundary',
      seal({ entryAuthFrom: null }),
      context,
      'seal 2 moves the entry-authentication boundary (none, seal 1 recorded 800)',
    ],
    ['unsigned, a horizon ahead of the server', seal({ horizon: '4000' }, null), { ...context, signedSeq: null }, 'or the seal was forged'],
  ])('refuses %s', (_what, newest, given, detail) => {
    const found = distrustSeal(newest, given);
    expect(found?.code).toBe(SEAL_UNTRUSTED_CODE);
    expect(found?.detail).toContain(detail);
  });

  it.each([
    ['horizon', { horizon: '1001' }],
    ['last row', { lastTx: '1001' }],
    ['boundary', { entryAuthFrom: '1001' }],
  ])("names a signed seal whose %s is ahead of the server's ids: a restore onto a new server", (_what, fields: Partial<Seal>) => {
    const found = distrustSeal(seal(fields), { ...context, boundary: { seq: 2, from: fields.entryAuthFrom ?? '800' } });
    expect(found?.code).toBe(TX_BEHIND_CHAIN_CODE);
    expect(found?.detail).toContain("ahead of this server's transaction ids (the next is 1000)");
    expect(found?.detail).toContain('docs/RUNBOOK.md section 12');
  });

  it('carries the seal and the code in its error', () => {
    const newest = seal({}, null);
    const error = new UntrustedSealError(newest, { code: SEAL_UNTRUSTED_CODE, detail: 'seal 2 is not signed' });
    expect({ code: error.code, seq: error.seal.seq, message: error.message }).toEqual({
      code: SEAL_UNTRUSTED_CODE,
      seq: 2,
      message: 'the sealer will not continue seal 2: seal 2 is not signed',
    });
  });
});
