/** Bytes before each bitmap in a checkpoint's manifest: the seal's seq (8, big-endian) and the bitmap's length (4). */
const HEADER_BYTES = 12;

/**
 * Which rows a retention checkpoint removed, by the seals that sealed them: per seal (by seq), a
 * bitmap over that seal's manifest, bit `i` (most significant bit first) set when the manifest's
 * `i`-th row went. One bit per row of each seal that covered the month: a month of a million rows
 * sealed 20 000 at a time takes about 125 KB.
 */
export type RetainedRows = Map<number, Buffer>;

/**
 * The manifest of a retention checkpoint: for each seal in seq order, its seq (8 bytes), the
 * bitmap's length (4 bytes) and the bitmap.
 *
 * @example
 * const manifest = encodeRetained(new Map([[3, Buffer.from([0b1010_0000])]]));
 * manifest.length; // 13
 */
export function encodeRetained(rows: RetainedRows): Buffer {
  const parts: Buffer[] = [];
  for (const seq of [...rows.keys()].sort((a, b) => a - b)) {
    const bitmap = rows.get(seq) as Buffer;
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeBigUInt64BE(BigInt(seq), 0);
    header.writeUInt32BE(bitmap.length, 8);
    parts.push(header, bitmap);
  }
  return Buffer.concat(parts);
}

/**
 * Reads a checkpoint's manifest back; a truncated entry ends the reading (the checkpoint's hash,
 * checked apart, covers the manifest).
 *
 * @example
 * decodeRetained(encodeRetained(rows)).get(3)?.[0]; // 160
 */
export function decodeRetained(manifest: Buffer): RetainedRows {
  const rows: RetainedRows = new Map();
  for (let at = 0; at + HEADER_BYTES <= manifest.length;) {
    const seq = Number(manifest.readBigUInt64BE(at));
    const length = manifest.readUInt32BE(at + 8);
    const end = at + HEADER_BYTES + length;
    if (end > manifest.length) break;
    rows.set(seq, manifest.subarray(at + HEADER_BYTES, end));
    at = end;
  }
  return rows;
}

/**
 * Adds `more` to `into`: a seal some of whose rows went in several months has the bits of each.
 *
 * @example
 * mergeRetained(all, decodeRetained(checkpoint.manifest));
 */
export function mergeRetained(into: RetainedRows, more: RetainedRows): void {
  for (const [seq, bitmap] of more) {
    const known = into.get(seq);
    if (!known) {
      into.set(seq, Buffer.from(bitmap));
      continue;
    }
    const merged = Buffer.alloc(Math.max(known.length, bitmap.length));
    for (let i = 0; i < merged.length; i++) merged[i] = (known[i] ?? 0) | (bitmap[i] ?? 0);
    into.set(seq, merged);
  }
}

/**
 * Whether bit `index` is set.
 *
 * @example
 * hasBit(Buffer.from([0b1000_0000]), 0); // true
 */
export function hasBit(bitmap: Buffer | undefined, index: number): boolean {
  return !!bitmap && index >> 3 < bitmap.length && (bitmap[index >> 3] & (0x80 >> (index & 7))) !== 0;
}

/**
 * Sets bit `index`.
 *
 * @example
 * setBit(bitmap, 9);
 */
export function setBit(bitmap: Buffer, index: number): void {
  bitmap[index >> 3] |= 0x80 >> (index & 7);
}
