import { createHash } from 'node:crypto';
import { resolveIntegrityOptions } from './integrity-options';
import { GENESIS_HASH, manifestEntry, SEAL_VERSION_ENTRY_AUTH, sealHash } from './seal';

// What the mutation run of the integrity group left alive: the entry-authentication boundary in a seal's hash, and entry keys as an option.
const seal = {
  seq: 2,
  version: 1,
  prevHash: GENESIS_HASH,
  lastTx: '900',
  lastId: '01937a4c-0000-7000-8000-00000000000a',
  horizon: '901',
  rowCount: 1,
  root: Buffer.alloc(32, 1),
  manifest: Buffer.alloc(24, 2),
  sealedAt: 1764300000123,
};

/** The hash a seal of version 2 must have: each field as a 2-byte length and its UTF-8 text, the boundary last (then `after`). */
function expectedHash(from: string, after: string[] = []): string {
  const fields = [
    'audit-seal-v2',
    '2',
    GENESIS_HASH.toString('hex'),
    '900',
    seal.lastId,
    '901',
    '1',
    seal.root.toString('hex'),
    createHash('sha256').update(seal.manifest).digest('hex'),
    '1764300000123',
    from,
    ...after,
  ];
  const hash = createHash('sha256');
  for (const field of fields) {
    const bytes = Buffer.from(field, 'utf8');
    hash.update(Buffer.from([bytes.length >> 8, bytes.length & 0xff])).update(bytes);
  }
  return hash.digest('hex');
}

describe('sealHash and the entry-authentication boundary', () => {
  it('covers the boundary from version 2 on, as text, empty when there is none', () => {
    const v2 = { ...seal, version: SEAL_VERSION_ENTRY_AUTH };
    expect(sealHash({ ...v2, entryAuthFrom: '812' }).toString('hex')).toBe(expectedHash('812'));
    expect(sealHash({ ...v2, entryAuthFrom: null }).toString('hex')).toBe(expectedHash(''));
    expect(sealHash({ ...v2, version: 3, entryAuthFrom: '812' }).equals(sealHash({ ...v2, version: 3, entryAuthFrom: '813' }))).toBe(false);
  });

  it('leaves it out of a version-1 seal', () => {
    expect(sealHash({ ...seal, entryAuthFrom: '812' }).equals(sealHash(seal))).toBe(true);
  });
});

describe('sealHash of a retention checkpoint, and manifest entries', () => {
  it('goes on after the boundary with "retention", the month, its rows and the covered seal hash (empty for none)', () => {
    const v2 = { ...seal, version: SEAL_VERSION_ENTRY_AUTH, entryAuthFrom: '812' };
    const covered = Buffer.alloc(32, 5);
    expect(sealHash({ ...v2, retention: { month: '2026-01', rows: 40, covered } }).toString('hex')).toBe(
      expectedHash('812', ['retention', '2026-01', '40', covered.toString('hex')]),
    );
    expect(sealHash({ ...v2, retention: { month: '2026-02', rows: 0, covered: null } }).toString('hex')).toBe(
      expectedHash('812', ['retention', '2026-02', '0', '']),
    );
    // A seal (no retention) hashes as it always did.
    expect(sealHash({ ...v2, retention: null }).toString('hex')).toBe(expectedHash('812'));
  });

  it("writes a row's id as its 16 bytes and the leaf's first 8, and an id that is not a canonical UUID as far as it is hex", () => {
    const leaf = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');
    expect(manifestEntry('01937a4c-0000-7000-8000-00000000000a', leaf).toString('hex')).toBe(
      '01937a4c00007000800000000000000a0011223344556677',
    );
    expect(manifestEntry('abcd-ef', leaf).toString('hex')).toBe('abcdef0011223344556677');
    expect(manifestEntry('abcd', leaf).toString('hex')).toBe('abcd0011223344556677');
  });
});

describe('resolveIntegrityOptions and entry keys', () => {
  it('takes entry keys as an option, and has none by default', () => {
    const secret = 'a-secret-of-at-least-thirty-two-characters';
    expect(resolveIntegrityOptions({ entryKeys: [{ id: 'k1', secret }] }).entryKeys.map((k) => k.id)).toEqual(['k1']);
    expect(resolveIntegrityOptions(undefined).entryKeys).toEqual([]);
    expect(resolveIntegrityOptions({ enabled: true }).entryKeys).toEqual([]);
  });
});
