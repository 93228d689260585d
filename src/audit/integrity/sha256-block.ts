/**
 * SHA-256's compression function (FIPS 180-4, section 6.2.2) in JavaScript, for the module's
 * short fixed-size hashes: an HMAC over a 32-byte digest and a Merkle inner node are one or two
 * blocks, which this hashes in less time than one call into `node:crypto` costs. Anything longer
 * goes to `node:crypto`.
 */

const ROUND_CONSTANTS = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
  0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
  0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
  0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
  0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
  0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** The initial hash value H(0). */
const INITIAL_STATE = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

/** The message schedule, reused by every call (the module runs on one thread). */
const schedule = new Int32Array(64);

/**
 * A SHA-256 state: eight 32-bit words, `Int32Array(8)`.
 *
 * @example
 * const state: Sha256State = initialState();
 */
export type Sha256State = Int32Array;

/**
 * A fresh state, H(0).
 *
 * @example
 * const state = initialState();
 */
export function initialState(): Sha256State {
  return INITIAL_STATE.slice();
}

/**
 * Hashes one 64-byte block into `state`, in place. `block` holds the block's 16 big-endian words.
 *
 * @example
 * compressBlock(state, words); // state now holds H(i)
 */
export function compressBlock(state: Sha256State, block: Int32Array): void {
  const w = schedule;
  for (let i = 0; i < 16; i++) w[i] = block[i];
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15];
    const y = w[i - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
  }
  let a = state[0];
  let b = state[1];
  let c = state[2];
  let d = state[3];
  let e = state[4];
  let f = state[5];
  let g = state[6];
  let h = state[7];
  for (let i = 0; i < 64; i++) {
    const sum1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + sum1 + ((e & f) ^ (~e & g)) + ROUND_CONSTANTS[i] + w[i]) | 0;
    const sum0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (sum0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0] + a) | 0;
  state[1] = (state[1] + b) | 0;
  state[2] = (state[2] + c) | 0;
  state[3] = (state[3] + d) | 0;
  state[4] = (state[4] + e) | 0;
  state[5] = (state[5] + f) | 0;
  state[6] = (state[6] + g) | 0;
  state[7] = (state[7] + h) | 0;
}

/** The one-block scratch of {@link hashAfterBlock}. */
const lastBlock = new Int32Array(16);
const work = new Int32Array(8);

/**
 * SHA-256 of one 64-byte block (whose state after it is `prefixState`) followed by 32 bytes
 * (`words`, 8 big-endian words): the last block holds the 32 bytes, the padding and the length
 * (96 bytes, 768 bits). Writes the 8 words of the hash into `out`.
 *
 * @example
 * hashAfterBlock(innerPadState, digestWords, innerWords); // HMAC's inner hash
 */
export function hashAfterBlock(prefixState: Sha256State, words: Int32Array, out: Int32Array): void {
  for (let i = 0; i < 8; i++) lastBlock[i] = words[i];
  lastBlock[8] = 0x80000000 | 0;
  for (let i = 9; i < 15; i++) lastBlock[i] = 0;
  lastBlock[15] = 96 * 8;
  work.set(prefixState);
  compressBlock(work, lastBlock);
  out.set(work);
}

/**
 * Reads 32 bytes as 8 big-endian words into `out`.
 *
 * @example
 * readWords(digest, words);
 */
export function readWords(bytes: Buffer, out: Int32Array): void {
  for (let i = 0; i < 8; i++) out[i] = bytes.readInt32BE(i * 4);
}

/**
 * Writes 8 words as 32 big-endian bytes.
 *
 * @example
 * wordsToBuffer(state).toString('hex');
 */
export function wordsToBuffer(words: Int32Array): Buffer {
  const out = Buffer.allocUnsafe(32);
  for (let i = 0; i < 8; i++) out.writeInt32BE(words[i], i * 4);
  return out;
}

const nodeBlock = new Int32Array(16);
const nodeState = new Int32Array(8);

/**
 * SHA-256 of 65 bytes (a Merkle inner node: `0x01`, its left and its right child): two blocks,
 * the second holding the last byte, the padding and the length (520 bits).
 *
 * @example
 * hash65(node).equals(createHash('sha256').update(node).digest()); // true
 */
export function hash65(bytes: Buffer): Buffer {
  nodeState.set(INITIAL_STATE);
  for (let i = 0; i < 16; i++) nodeBlock[i] = bytes.readInt32BE(i * 4);
  compressBlock(nodeState, nodeBlock);
  nodeBlock[0] = (bytes[64] << 24) | 0x800000;
  for (let i = 1; i < 15; i++) nodeBlock[i] = 0;
  nodeBlock[15] = 65 * 8;
  compressBlock(nodeState, nodeBlock);
  return wordsToBuffer(nodeState);
}
