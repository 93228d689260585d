import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { EMPTY_ROOT, merkleRoot } from './merkle';

const sha256 = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();

/** RFC 6962, section 2.1, as written: split at the largest power of two smaller than n. */
function rfc6962(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return sha256();
  if (leaves.length === 1) return leaves[0];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha256(Buffer.from([1]), rfc6962(leaves.slice(0, k)), rfc6962(leaves.slice(k)));
}

describe('merkleRoot', () => {
  it('is the RFC 6962 tree hash for any number of leaves', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 8 }), { maxLength: 70 }), (data) => {
        const leaves = data.map((d) => sha256(Buffer.from([0]), Buffer.from(d)));
        expect(merkleRoot(leaves).equals(rfc6962(leaves))).toBe(true);
      }),
    );
  });

  it('gives the hash of nothing for no leaves, and changes when any leaf changes or leaves swap', () => {
    expect(merkleRoot([]).toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(merkleRoot([])).toEqual(EMPTY_ROOT);
    const leaves = [1, 2, 3, 4, 5].map((n) => sha256(Buffer.from([0, n])));
    const root = merkleRoot(leaves);
    expect(merkleRoot([leaves[1], leaves[0], ...leaves.slice(2)]).equals(root)).toBe(false);
    expect(merkleRoot([...leaves.slice(0, 4), sha256(Buffer.from([0, 6]))]).equals(root)).toBe(false);
    expect(merkleRoot(leaves.slice(0, 4)).equals(root)).toBe(false);
  });

  it('refuses leaves that are not 32-byte hashes', () => {
    expect(() => merkleRoot([Buffer.alloc(32), Buffer.from('a row, not its hash')])).toThrow(RangeError);
  });

  it('refuses anything but 32-byte leaf hashes, saying so', () => {
    expect(() => merkleRoot([Buffer.alloc(32), Buffer.alloc(31)])).toThrow(new RangeError('merkleRoot() takes leaf hashes: 32 bytes each'));
  });
});
