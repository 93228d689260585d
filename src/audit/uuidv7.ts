import { randomFillSync } from 'node:crypto';

let lastMs = 0;
let lastMsHex = '';
let sequence = 0;
// Random bytes are drawn 4 KiB at a time: one system call per 512 ids instead of one per id.
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;
/** The pool's bytes as hex, made once per fill: an id takes slices of it. */
let poolHex = '';
/** Each byte's two hex digits. */
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Ids made in the same
 * millisecond by this process stay in creation order through a 12-bit counter in `rand_a`,
 * so primary-key inserts append to the index instead of splitting pages at random.
 *
 * @example
 * uuidv7(); // '019ac5f0-8a1e-7000-9f3c-2b1d4e5f6a7b'
 */
export function uuidv7(now: number = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    sequence = 0;
  } else if (sequence < 0xfff) {
    sequence += 1;
  } else {
    // Counter exhausted within one millisecond: borrow the next millisecond, keeping ids ordered.
    lastMs += 1;
    sequence = 0;
  }
  if (lastMsHex === '' || sequence === 0) lastMsHex = lastMs.toString(16).padStart(12, '0');
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolHex = pool.toString('hex');
    poolOffset = 0;
  }
  // 62 random bits: the variant (`10`) takes the top two bits of the first of the 8 bytes.
  const r = poolOffset;
  poolOffset += 8;
  return (
    `${lastMsHex.slice(0, 8)}-${lastMsHex.slice(8)}-7${HEX[sequence >> 4]}${(sequence & 0xf).toString(16)}-` +
    `${HEX[0x80 | (pool[r] & 0x3f)]}${poolHex.slice(2 * r + 2, 2 * r + 4)}-${poolHex.slice(2 * r + 4, 2 * r + 16)}`
  );
}

/**
 * The time in a UUIDv7 id (milliseconds since the epoch: when the module made the entry), or NaN
 * for an id of another version.
 *
 * @example
 * uuidv7Time('019ac5f0-8a1e-7000-9f3c-2b1d4e5f6a7b'); // 1764257466910
 */
export function uuidv7Time(id: string): number {
  const hex = id.replaceAll('-', '');
  return /^[0-9a-f]{12}7/i.test(hex) ? Number.parseInt(hex.slice(0, 12), 16) : Number.NaN;
}
