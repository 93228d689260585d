import { createHash } from 'node:crypto';
import { hash65 } from './sha256-block';

/** An inner node's input, `0x01` and its two children, laid out in one buffer to hash in one call. */
const node = Buffer.alloc(65, 0x01);

/** The root of an empty tree: SHA-256 of nothing (RFC 6962). */
export const EMPTY_ROOT = createHash('sha256').digest();

/**
 * The Merkle tree hash of `leaves` (already leaf hashes, 32 bytes each), as RFC 6962 defines it:
 * an inner node is SHA-256 over `0x01`, its left and its right child, the left subtree the largest
 * power of two. Pairing level by level and carrying an odd last node up unchanged gives exactly
 * that tree.
 *
 * @example
 * merkleRoot([leafHash(rowA), leafHash(rowB)]).toString('hex');
 */
export function merkleRoot(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.some((leaf) => leaf.length !== 32)) throw new RangeError('merkleRoot() takes leaf hashes: 32 bytes each');
  let level = [...leaves];
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) {
      level[i].copy(node, 1);
      level[i + 1].copy(node, 33);
      next.push(hash65(node));
    }
    if (level.length % 2 === 1) next.push(level[level.length - 1]);
    level = next;
  }
  return level[0];
}
