import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

/** Version of the row encoding and seal hash; stored with each seal. */
export const SEAL_VERSION = 1;

/** Version of a seal made with entry keys: as version 1, and its hash covers `entryAuthFrom` too. */
export const SEAL_VERSION_ENTRY_AUTH = 2;

/** The `prev_hash` of seal 1. */
export const GENESIS_HASH = Buffer.alloc(32);

/** Bytes per row in a manifest: the row's 16-byte id and the first 8 bytes of its leaf hash. */
export const MANIFEST_ENTRY_BYTES = 24;

/**
 * One seal, as stored in `audit_seal`: the rows after the previous seal's last row up to
 * (`lastTx`, `lastId`) in sealing order, their Merkle `root`, and a `manifest` naming each row.
 */
export interface Seal {
  seq: number;
  version: number;
  prevHash: Buffer;
  lastTx: string | null;
  lastId: string;
  /** The transaction horizon when sealed: every transaction below it had ended. */
  horizon: string;
  rowCount: number;
  root: Buffer;
  manifest: Buffer;
  /** Milliseconds since the epoch; NaN when the stored time is not finite (changed by a superuser). */
  sealedAt: number;
  hash: Buffer;
  keyId: string | null;
  signature: Buffer | null;
  /**
   * From version 2: the transaction id from which every row must carry a valid entry code,
   * recorded by the first seal made with entry keys and repeated by every later one; null before.
   */
  entryAuthFrom?: string | null;
  /** Set on a retention checkpoint only (see {@link RetentionMark}); null or absent on a seal. */
  retention?: RetentionMark | null;
}

/**
 * What a retention checkpoint records (docs/LIFECYCLE.md): the month removed (`YYYY-MM`), how
 * many rows it held, and the hash of the newest seal that covered one of them (null for an empty
 * month). A checkpoint is a row of `audit_seal` that seals no row: it copies the last row, horizon
 * and boundary of the seal before it, and its manifest lists which rows of which seals went
 * (see `lifecycle/checkpoint.ts`). Its hash covers these fields after the seal's own.
 */
export interface RetentionMark {
  month: string;
  rows: number;
  covered: Buffer | null;
  /**
   * What the month held of erasures, carried forward (JSON text, see
   * `lifecycle/checkpoint-erasures.ts`); null or absent on a checkpoint made before it was recorded.
   */
  erasures?: string | null;
}

/**
 * The seal's own hash: SHA-256 over its fields (the manifest by its SHA-256), each length-prefixed.
 * The next seal stores it as `prevHash`; the signature signs it. A retention checkpoint's hash
 * goes on with `retention`, its month, rows and covered seal hash, then `erasures` and the
 * SHA-256 of the erasures it carries forward when it records them: a seal's hash is unchanged.
 *
 * `manifestDigest`, when given, is the manifest's SHA-256 as the server computed it (the manifest
 * itself is then not read).
 *
 * @example
 * sealHash(seal).equals(seal.hash); // false when a stored field was changed
 */
export function sealHash(seal: Omit<Seal, 'hash' | 'keyId' | 'signature'>, manifestDigest?: Buffer): Buffer {
  const hash = createHash('sha256');
  const fields = [
    `audit-seal-v${seal.version}`,
    String(seal.seq),
    seal.prevHash.toString('hex'),
    seal.lastTx ?? '',
    seal.lastId,
    seal.horizon,
    String(seal.rowCount),
    seal.root.toString('hex'),
    (manifestDigest ?? createHash('sha256').update(seal.manifest).digest()).toString('hex'),
    String(seal.sealedAt),
    ...(seal.version >= SEAL_VERSION_ENTRY_AUTH ? [seal.entryAuthFrom ?? ''] : []),
    ...(seal.retention
      ? ['retention', seal.retention.month, String(seal.retention.rows), seal.retention.covered?.toString('hex') ?? '']
      : []),
    // By its SHA-256, as the manifest: a month of many erasures may exceed a field's 64 KiB.
    ...(typeof seal.retention?.erasures === 'string'
      ? ['erasures', createHash('sha256').update(seal.retention.erasures).digest('hex')]
      : []),
  ];
  for (const field of fields) {
    const bytes = Buffer.from(field, 'utf8');
    hash.update(Buffer.from([bytes.length >> 8, bytes.length & 0xff])).update(bytes);
  }
  return hash.digest();
}

/**
 * One manifest entry: the row's id and the first 8 bytes of its leaf hash.
 *
 * @example
 * const manifest = Buffer.concat(rows.map((r: { id: string; leaf: Buffer }) => manifestEntry(r.id, r.leaf)));
 */
export function manifestEntry(id: string, leaf: Buffer): Buffer {
  const entry = Buffer.alloc(24);
  // A canonical UUID fills the 16 bytes; anything else is written as before, as far as it is hex.
  if (entry.write(id.replaceAll('-', ''), 0, 16, 'hex') !== 16)
    return Buffer.concat([Buffer.from(id.replaceAll('-', ''), 'hex'), leaf.subarray(0, 8)]);
  leaf.copy(entry, 16, 0, 8);
  return entry;
}

/**
 * The manifest as a map from row id (canonical UUID text) to where that row's leaf-hash prefix
 * starts in the manifest (8 bytes from there).
 *
 * @example
 * const at = readManifest(seal.manifest).get(rowId) as number;
 * seal.manifest.toString('hex', at, at + 8); // 'a1b2c3d4e5f60718'
 */
export function readManifest(manifest: Buffer): Map<string, number> {
  const entries = new Map<string, number>();
  for (let at = 0; at + MANIFEST_ENTRY_BYTES <= manifest.length; at += MANIFEST_ENTRY_BYTES) {
    const hex = manifest.toString('hex', at, at + 16);
    entries.set(`${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`, at + 16);
  }
  return entries;
}

/**
 * The id of a public key: the first 16 hex digits of the SHA-256 of its SPKI DER form.
 *
 * @example
 * keyIdOf(createPublicKey(privateKey)); // '3f9c0a…'
 */
export function keyIdOf(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

/**
 * Signs a seal hash with an Ed25519 private key.
 *
 * @example
 * const signature = signSeal(hash, privateKey);
 */
export function signSeal(hash: Buffer, privateKey: KeyObject): Buffer {
  return sign(null, hash, privateKey);
}

/**
 * True when `signature` is a valid Ed25519 signature of `hash` by `publicKey`.
 *
 * @example
 * verifySeal(seal.hash, seal.signature, publicKey); // true
 */
export function verifySeal(hash: Buffer, signature: Buffer, publicKey: KeyObject): boolean {
  try {
    return verify(null, hash, publicKey, signature);
  } catch {
    return false;
  }
}
