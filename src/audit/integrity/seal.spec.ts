import { createHash, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { leafHash } from './row-encoding';
import { GENESIS_HASH, keyIdOf, manifestEntry, readManifest, sealHash, signSeal, verifySeal } from './seal';

const row = ['01937a4c-0000-7000-8000-00000000000a', '812', '1764300000000000', 'nda_created', null, 'nda-1', 'u1', 'success'];

describe('row encoding and seals', () => {
  it('tells NULL from an empty text, and a field boundary moved from a changed field', () => {
    const hex = (r: (string | null)[]) => leafHash(r).toString('hex');
    expect(hex([...row.slice(0, 4), ''])).not.toBe(hex([...row.slice(0, 4), null]));
    expect(hex(['ab', 'c'])).not.toBe(hex(['a', 'bc']));
    expect(hex(row)).toBe(hex([...row]));
  });

  it('reads back the manifest it writes: the row id and the leaf hash prefix', () => {
    const leaf = leafHash(row);
    const manifest = Buffer.concat([manifestEntry(row[0] as string, leaf), manifestEntry('01937a4c-0000-7000-8000-00000000000b', leaf)]);
    const entries = [...readManifest(manifest)];
    expect(entries.map(([id]) => id)).toEqual([row[0], '01937a4c-0000-7000-8000-00000000000b']);
    for (const [, at] of entries) expect(manifest.toString('hex', at, at + 8)).toBe(leaf.toString('hex', 0, 8));
  });

  it('hashes every field of a seal, and signs the hash so that only the key holder can', () => {
    const seal = {
      seq: 2,
      version: 1,
      prevHash: GENESIS_HASH,
      lastTx: '900',
      lastId: row[0] as string,
      horizon: '901',
      rowCount: 1,
      root: leafHash(row),
      manifest: manifestEntry(row[0] as string, leafHash(row)),
      sealedAt: 1764300000123,
    };
    const hash = sealHash(seal);
    const changed = [
      { seq: 3 },
      { lastTx: '899' },
      { horizon: '900' },
      { rowCount: 2 },
      { sealedAt: 1764300000124 },
      { manifest: Buffer.alloc(24) },
    ];
    for (const change of changed) expect(sealHash({ ...seal, ...change }).equals(hash)).toBe(false);

    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const signature = signSeal(hash, createPrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' })));
    expect(verifySeal(hash, signature, publicKey)).toBe(true);
    expect(verifySeal(sealHash({ ...seal, rowCount: 2 }), signature, publicKey)).toBe(false);
    expect(verifySeal(hash, signature, generateKeyPairSync('ed25519').publicKey)).toBe(false);
    expect(keyIdOf(privateKey)).toBe(keyIdOf(publicKey));
    expect(keyIdOf(publicKey)).toMatch(/^[0-9a-f]{16}$/);
  });

  it('is SHA-256 over a version tag and the fields, each as a 2-byte length and its UTF-8 bytes, the manifest by its SHA-256', () => {
    // The version-1 format written out on its own: seals stored under it must keep verifying, so a change is a new version.
    const leaf = leafHash(row);
    const manifest = manifestEntry(row[0] as string, leaf);
    const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest();
    const fields = [
      'audit-seal-v1',
      '7',
      '00'.repeat(32),
      '',
      row[0] as string,
      '0',
      '1',
      leaf.toString('hex'),
      sha256(manifest).toString('hex'),
      '1764300000123',
    ];
    const encoded = Buffer.concat(fields.flatMap((field) => [Buffer.from([0, Buffer.byteLength(field)]), Buffer.from(field, 'utf8')]));
    const seal = {
      seq: 7,
      version: 1,
      prevHash: GENESIS_HASH,
      lastTx: null,
      lastId: row[0] as string,
      horizon: '0',
      rowCount: 1,
      root: leaf,
      manifest,
      sealedAt: 1764300000123,
    };
    expect(sealHash(seal).toString('hex')).toBe(sha256(encoded).toString('hex'));
  });

  it('finds a signature false under a key that cannot verify one, rather than throwing', () => {
    const hash = Buffer.alloc(32, 1);
    expect(verifySeal(hash, Buffer.alloc(64), generateKeyPairSync('x25519').publicKey)).toBe(false);
    expect(verifySeal(hash, Buffer.from('short'), generateKeyPairSync('ed25519').publicKey)).toBe(false);
  });
});
