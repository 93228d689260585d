import { hash } from 'node:crypto';
import { ENTRY_ENCODING_V1 } from '../integrity/entry-encoding';
import { type Seal } from '../integrity/seal';
import { ENTRY_ENCODING_V2, V2_LEAF_FIELDS, V2_LEAF_PREFIX } from '../privacy/encoding-v2';

/** The archive's format, named in its seals file. */
export const ARCHIVE_FORMAT = 'audit-archive-v1';

/**
 * The fields of one line of an archive's rows file, in order: the 15 sealed columns as the row
 * encoding reads them (`integrity/row-encoding.ts`), then `auth_code` and `personal` (neither
 * sealed: the entry code and the erasable values, checked by their own checks).
 */
export const ARCHIVE_COLUMNS = [
  'id',
  'tx',
  'occurred_at_us',
  'action',
  'entity_type',
  'entity_id',
  'user_id',
  'outcome',
  'ip',
  'user_agent',
  'request_id',
  'changes',
  'metadata',
  'recorded_at_us',
  'commitments',
  'auth_code',
  'personal',
] as const;

/** A seal as an archive stores it: bytes as hex (hashes) or base64 (manifest, signature), `sealedAt` null when not finite. */
export interface ArchivedSeal {
  seq: number;
  version: number;
  prevHash: string;
  lastTx: string | null;
  lastId: string;
  horizon: string;
  rowCount: number;
  root: string;
  manifest: string;
  sealedAt: number | null;
  hash: string;
  keyId: string | null;
  signature: string | null;
  entryAuthFrom: string | null;
  /** A checkpoint's fields; `erasures` (what it carried forward, which its hash covers) when it records them. */
  retention: { month: string; rows: number; covered: string | null; erasures?: string | null } | null;
}

/**
 * An archive's seals file (`audit-YYYY-MM.seals.json`): what the archive holds and the chain
 * segment that checks it. Only the seals are authenticated (by their hashes, links, signatures
 * and the witness); the other fields say where to look and what to expect.
 *
 * @example
 * const header = JSON.parse(await readFile('audit-2026-01.seals.json', 'utf8')) as ArchiveHeader;
 */
export interface ArchiveHeader {
  format: typeof ARCHIVE_FORMAT;
  month: string;
  /** `database/table`, as the witness names the trail. */
  trail: string;
  table: string;
  createdAt: string;
  /** The rows file's name, beside this file. */
  rowsFile: string;
  columns: readonly string[];
  /** Lines in the rows file: every row of the seals below, of whatever month. */
  rows: number;
  /** Of those, the rows of `month` (by `occurred_at`). */
  monthRows: number;
  /** The seals whose ranges hold the month's rows, seq `first` to `last` with every seal between (retention checkpoints too). */
  seals: ArchivedSeal[];
  /** Retention checkpoints outside that range that removed rows of those seals: their rows are gone, not missing. */
  checkpoints: ArchivedSeal[];
  /** The `audit_erasure` entries that erased rows of this archive: the entry's row id, the erasure's id and the rows it counts. */
  erasures: { entry: string; erasure: string; rows: number }[];
  /**
   * The `audit_erasure` entries of erasures made inside this archive (`audit-erase --archive-dir`),
   * whole: each the entry's row as the rows file holds a row (`columns`), so that its entry code can
   * be checked with the entry keys. Absent in an archive no erasure rewrote.
   */
  erasureEntries?: (string | null)[][];
}

/**
 * The names of a month's two files.
 *
 * @example
 * archiveFiles('2026-01'); // { rows: 'audit-2026-01.ndjson.gz', seals: 'audit-2026-01.seals.json' }
 */
export function archiveFiles(month: string): { rows: string; seals: string } {
  return { rows: `audit-${month}.ndjson.gz`, seals: `audit-${month}.seals.json` };
}

/**
 * A seal as the archive stores it.
 *
 * @example
 * JSON.stringify(toArchivedSeal(seal));
 */
export function toArchivedSeal(seal: Seal): ArchivedSeal {
  return {
    seq: seal.seq,
    version: seal.version,
    prevHash: seal.prevHash.toString('hex'),
    lastTx: seal.lastTx,
    lastId: seal.lastId,
    horizon: seal.horizon,
    rowCount: seal.rowCount,
    root: seal.root.toString('hex'),
    manifest: seal.manifest.toString('base64'),
    sealedAt: Number.isFinite(seal.sealedAt) ? seal.sealedAt : null,
    hash: seal.hash.toString('hex'),
    keyId: seal.keyId,
    signature: seal.signature?.toString('base64') ?? null,
    entryAuthFrom: seal.entryAuthFrom ?? null,
    retention: seal.retention
      ? {
          month: seal.retention.month,
          rows: seal.retention.rows,
          covered: seal.retention.covered?.toString('hex') ?? null,
          ...(seal.retention.erasures === undefined ? {} : { erasures: seal.retention.erasures }),
        }
      : null,
  };
}

/**
 * A seal read back from an archive; a field of the wrong type throws (the archive cannot be checked).
 *
 * @example
 * const seals = header.seals.map(fromArchivedSeal);
 */
export function fromArchivedSeal(value: ArchivedSeal): Seal {
  const text = (v: unknown, name: string): string => {
    if (typeof v !== 'string') throw new Error(`seal ${String(value?.seq)}: its ${name} is not text`);
    return v;
  };
  const bytes = (v: unknown, name: string, encoding: 'hex' | 'base64') => Buffer.from(text(v, name), encoding);
  if (!value || !Number.isInteger(value.seq)) throw new Error('a seal without a whole-number seq');
  const retention = value.retention;
  return {
    seq: value.seq,
    version: Number(value.version),
    prevHash: bytes(value.prevHash, 'prevHash', 'hex'),
    lastTx: value.lastTx === null ? null : text(value.lastTx, 'lastTx'),
    lastId: text(value.lastId, 'lastId'),
    horizon: text(value.horizon, 'horizon'),
    rowCount: Number(value.rowCount),
    root: bytes(value.root, 'root', 'hex'),
    manifest: bytes(value.manifest, 'manifest', 'base64'),
    sealedAt: typeof value.sealedAt === 'number' ? value.sealedAt : Number.NaN,
    hash: bytes(value.hash, 'hash', 'hex'),
    keyId: value.keyId === null ? null : text(value.keyId, 'keyId'),
    signature: value.signature === null ? null : bytes(value.signature, 'signature', 'base64'),
    entryAuthFrom: value.entryAuthFrom === null || value.entryAuthFrom === undefined ? null : text(value.entryAuthFrom, 'entryAuthFrom'),
    retention: retention
      ? {
          month: text(retention.month, 'retention month'),
          rows: Number(retention.rows),
          covered: retention.covered === null ? null : bytes(retention.covered, 'retention covered', 'hex'),
          ...(retention.erasures === undefined
            ? {}
            : { erasures: retention.erasures === null ? null : text(retention.erasures, 'retention erasures') }),
        }
      : null,
  };
}

/** Positions, in the sealed columns, of what each entry encoding covers (as `entry-encoding.ts` and `encoding-v2.ts` list them). */
const V1_ENTRY_FIELDS = [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
const V2_ENTRY_FIELDS = [0, 2, 3, 4, 5, 7, 10, 11, 12, 14];

/**
 * The entry digest of a row from its sealed columns, as `ENTRY_DIGEST_SQL` computes it from the
 * stored row: version 2 for a row with commitments, version 1 otherwise.
 *
 * @example
 * judgeEntry({ tx, code, digest: rowEntryDigest(fields) }, boundary, keys);
 */
export function rowEntryDigest(fields: readonly (string | null)[]): Buffer {
  const v2 = fields[14] !== null && fields[14] !== undefined;
  let text = v2 ? ENTRY_ENCODING_V2 : ENTRY_ENCODING_V1;
  for (const i of v2 ? V2_ENTRY_FIELDS : V1_ENTRY_FIELDS) {
    const field = fields[i] ?? null;
    text += field === null ? '~' : `${Buffer.byteLength(field, 'utf8')}:${field}`;
  }
  return hash('sha256', text, 'buffer');
}

/** Microseconds since the epoch of 0001-01-01 and of 9999-12-31 23:59:59.999999 (UTC): the range `row-validity.ts` allows. */
const FIRST_US = -62_135_596_800_000_000n;
const LAST_US = 253_402_300_799_999_999n;

/**
 * Why a row can never be sealed, from its sealed columns, as `ROW_PROBLEM_SQL` judges the stored
 * row (a timestamp outside the years 1 to 9999, or a `tx` below 3), or null.
 *
 * @example
 * rowProblem(fields); // null for a row the module wrote
 */
export function rowProblem(fields: readonly (string | null)[]): string | null {
  for (const [i, column] of [
    [2, 'occurred_at'],
    [13, 'recorded_at'],
  ] as const) {
    const us = fields[i];
    // Digits only, below 10^16 µs (the year 2286): within range without a BigInt.
    if (us !== null && us.length < 17 && us.charCodeAt(0) !== 45 && Number.isSafeInteger(Number(us)) && !us.includes('e')) continue;
    if (us === null || !/^-?\d+$/.test(us) || BigInt(us) < FIRST_US || BigInt(us) > LAST_US) {
      return `its ${column} (${us ?? 'not finite'} µs) is not a time in the years 1 to 9999`;
    }
  }
  const tx = fields[1];
  if (tx !== null && BigInt(tx) < 3n) return `its tx (${tx}) is no transaction's id`;
  return null;
}

const V1_LEAF_PREFIX = Buffer.from([0x00]);
const V1_LEAF_FIELDS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
/** Where a row's leaf input is laid out before it is hashed in one call; grown when a row needs more. */
let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * A row's Merkle leaf from its sealed columns, the same bytes as `leafHash` (version 1) and
 * `leafHashV2` (a row with commitments) hash, laid out in one buffer and hashed in one call: the
 * offline check hashes every row of a month.
 *
 * @example
 * rowLeaf(fields).equals(leafHash(fields.slice(0, 15))); // true
 */
export function rowLeaf(fields: readonly (string | null)[]): Buffer {
  const v2 = fields[14] !== null && fields[14] !== undefined;
  const prefix = v2 ? V2_LEAF_PREFIX : V1_LEAF_PREFIX;
  const positions = v2 ? V2_LEAF_FIELDS : V1_LEAF_FIELDS;
  let most = prefix.length;
  for (const i of positions) most += 4 + 3 * (fields[i]?.length ?? 0);
  if (most > scratch.length) scratch = Buffer.allocUnsafe(most);
  let at = prefix.copy(scratch, 0);
  for (const i of positions) {
    const field = fields[i] ?? null;
    if (field === null) {
      at = scratch.writeUInt32BE(0xffffffff, at);
      continue;
    }
    const bytes = scratch.write(field, at + 4, 'utf8');
    scratch.writeUInt32BE(bytes, at);
    at += 4 + bytes;
  }
  return hash('sha256', scratch.subarray(0, at), 'buffer');
}
