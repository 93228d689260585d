import { createSecretKey, hash, type KeyObject, timingSafeEqual } from 'node:crypto';
import { type AuditRecord } from '../audit-entry';
import { AuditConfigError } from '../audit.errors';
import { ENTRY_DIGEST_SQL, entryDigest } from './entry-encoding';
import { compressBlock, hashAfterBlock, initialState, readWords, type Sha256State, wordsToBuffer } from './sha256-block';

/**
 * One entry key as the option takes it: an id (stored with each code, so that keys can rotate) and
 * a secret of at least 32 characters, used as its UTF-8 bytes. The database never sees it.
 *
 * @example
 * const key: EntryKey = { id: '2026-12', secret: process.env.AUDIT_ENTRY_SECRET ?? '' };
 */
export interface EntryKey {
  id: string;
  secret: string;
}

/** An entry key after validation: the secret as a key object, which prints no secret. */
export interface ResolvedEntryKey {
  id: string;
  key: KeyObject;
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const MIN_SECRET_CHARS = 32;
/** `v<encoding>:<key id>:<HMAC-SHA256 of the entry digest, base64url>`: `v2` for rows with personal-data commitments. */
const CODE = /^v[12]:([A-Za-z0-9._-]{1,64}):([A-Za-z0-9_-]{43})$/;

/**
 * Validates `integrity.entryKeys`: a list of `{ id, secret }`, the first signs, all verify. The
 * error names the bad key by its place and id, never its secret.
 *
 * @example
 * resolveEntryKeys([{ id: 'k2', secret: newSecret }, { id: 'k1', secret: oldSecret }])[0].id; // 'k2'
 */
export function resolveEntryKeys(value: unknown): readonly ResolvedEntryKey[] {
  if (value === undefined || value === null) return [];
  const option = 'integrity.entryKeys';
  if (!Array.isArray(value)) throw AuditConfigError.invalidOption(option, 'a list of { id, secret }', typeof value);
  const seen = new Set<string>();
  return Object.freeze(
    value.map((entry: unknown, i) => {
      const { id, secret, ...rest } = (entry ?? {}) as Partial<EntryKey>;
      const name = `${option}[${i}]`;
      if (!entry || typeof entry !== 'object') throw AuditConfigError.invalidOption(name, 'an object { id, secret }', typeof entry);
      const unknown = Object.keys(rest)[0];
      if (unknown !== undefined) throw AuditConfigError.unknownOption(`${name}.${unknown}`, ['id', 'secret']);
      if (typeof id !== 'string' || !KEY_ID.test(id)) {
        throw AuditConfigError.invalidOption(`${name}.id`, '1 to 64 letters, digits, dots, dashes or underscores', id);
      }
      if (seen.has(id)) throw AuditConfigError.invalidOption(`${name}.id`, 'an id no other entry key has', id);
      seen.add(id);
      if (typeof secret !== 'string' || secret.length < MIN_SECRET_CHARS) {
        throw AuditConfigError.invalidSecret(`${name}.secret`, `a secret of at least ${MIN_SECRET_CHARS} characters (key "${id}")`);
      }
      return Object.freeze({ id, key: createSecretKey(Buffer.from(secret, 'utf8')) });
    }),
  );
}

/**
 * Reads entry keys from one environment variable (`AUDIT_INTEGRITY_ENTRY_KEY`): `<id>:<secret>`,
 * several separated by commas, the signing key first. Throws without echoing the text.
 *
 * @example
 * parseEntryKeys('k2:new-secret-of-32-characters-or-more,k1:old-secret-of-32-characters-or-more');
 */
export function parseEntryKeys(text: string): EntryKey[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part, i) => {
      const colon = part.indexOf(':');
      if (colon <= 0) throw new Error(`entry key ${i + 1} must be <id>:<secret> (the value is not shown)`);
      return { id: part.slice(0, colon), secret: part.slice(colon + 1) };
    });
}

/**
 * The entry's authentication code, made with `key` over {@link entryDigest}: `v1:<id>:<mac>`
 * (`v2:` for a record with personal-data commitments).
 *
 * @example
 * signEntry(record, keys[0]); // 'v1:k2:Xq3…'
 */
export function signEntry(record: AuditRecord, key: ResolvedEntryKey): string {
  return `${record.commitments === undefined ? 'v1' : 'v2'}:${key.id}:${mac(entryDigest(record), key.key).toString('base64url')}`;
}

/**
 * The signer of new entries: the first entry key, or none without keys.
 *
 * @example
 * new AuditEntryNormalizer(redactKeys, maxEntryBytes, entrySigner(options.integrity.entryKeys));
 */
export function entrySigner(keys: readonly ResolvedEntryKey[]): ((record: AuditRecord) => string) | undefined {
  const [signing] = keys;
  return signing ? (record) => signEntry(record, signing) : undefined;
}

/**
 * HMAC-SHA256 of a 32-byte digest (RFC 2104). Per key, the states after `K ⊕ ipad` and
 * `K ⊕ opad` are computed once; each code then costs two SHA-256 blocks, hashed in JavaScript
 * (two calls into `node:crypto` would cost three times as long).
 */
function mac(digest: Buffer, key: KeyObject): Buffer {
  let pads = PADS.get(key);
  if (!pads) {
    const raw = key.export();
    const block = Buffer.alloc(64);
    (raw.length > 64 ? hash('sha256', raw, 'buffer') : raw).copy(block);
    pads = { inner: padState(block, 0x36), outer: padState(block, 0x5c) };
    PADS.set(key, pads);
  }
  readWords(digest, macWords);
  hashAfterBlock(pads.inner, macWords, macWords);
  hashAfterBlock(pads.outer, macWords, macWords);
  return wordsToBuffer(macWords);
}

/** Per key: the SHA-256 states after `K ⊕ ipad` and after `K ⊕ opad`. */
const PADS = new WeakMap<KeyObject, { inner: Sha256State; outer: Sha256State }>();
const macWords = new Int32Array(8);

/** The state after hashing the key block with every byte XORed with `pad`. */
function padState(keyBlock: Buffer, pad: number): Sha256State {
  const padded = Buffer.alloc(64);
  for (let i = 0; i < 64; i++) padded[i] = keyBlock[i] ^ pad;
  const words = new Int32Array(16);
  for (let i = 0; i < 16; i++) words[i] = padded.readInt32BE(i * 4);
  const state = initialState();
  compressBlock(state, words);
  return state;
}

/** What a row's code says about it. `legacy`: written before entry authentication began; `unchecked`: a code, but no key to check it with. */
export type EntryVerdict = { kind: 'authentic' | 'legacy' | 'unchecked' } | { kind: 'forged'; reason: string };

/** A stored row as the entry check needs it: its `tx`, its code, and the digest the server computed of its fields. */
export interface StoredEntry {
  tx: bigint | null;
  code: string | null;
  digest: Buffer | null;
}

/**
 * Judges one stored row. A row without a code is `legacy` when it was written before the
 * boundary (`tx` below it, or no `tx`), or when no boundary is known yet; after it, `forged`.
 * A row with a code is `authentic` when one of `keys` made it over the row's fields as stored.
 *
 * @example
 * judgeEntry({ tx: 900n, code: null, digest: null }, 812n, null); // { kind: 'forged', reason: … }
 */
export function judgeEntry(row: StoredEntry, boundary: bigint | null, keys: readonly ResolvedEntryKey[] | null): EntryVerdict {
  if (row.code === null) {
    if (row.tx === null || boundary === null || row.tx < boundary) return { kind: 'legacy' };
    return { kind: 'forged', reason: `it carries no entry code, and was written after entry authentication began (tx ${boundary})` };
  }
  if (!keys || keys.length === 0 || row.digest === null) return { kind: 'unchecked' };
  const parsed = CODE.exec(row.code);
  if (!parsed) return { kind: 'forged', reason: 'its entry code is malformed' };
  const key = keys.find((k) => k.id === parsed[1]);
  if (!key) return { kind: 'forged', reason: `its entry code names key "${parsed[1]}", which is not among the entry keys given` };
  const given = Buffer.from(parsed[2], 'base64url');
  const expected = mac(row.digest, key.key);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { kind: 'forged', reason: 'its entry code does not match its content' };
  }
  return { kind: 'authentic' };
}

/** What a sealer selects besides a row's leaf when it holds entry keys (needs `LEAF_FIELDS` in the FROM list). */
export const SEAL_ENTRY_COLUMNS = `, l.auth_code AS code, ${ENTRY_DIGEST_SQL} AS digest`;

/** A row the sealer refused to seal, as its `audit.forged` line names it. */
export interface ForgedRow {
  id: string;
  tx: string | null;
  /** Why it is not authentic. */
  reason: string;
  /** What the row claims (its own columns, unproven). */
  occurredAt: string | null;
  action: string | null;
  entityType: string | null;
  entityId: string | null;
  userId: string | null;
}

/**
 * Splits the rows a sealer picked into those it may seal (authentic, or written before the
 * boundary without a code) and the forged ones, each with its reason. A row given a `reason`
 * already (the sealer found it forged by its position) is forged whatever its code.
 *
 * @example
 * const { sealed, forged } = judgeSealRows(rows, 812n, options.integrity.entryKeys);
 */
export function judgeSealRows<R extends { tx: string | null; code?: string | null; digest?: Buffer; reason?: string }>(
  rows: readonly R[],
  boundary: bigint,
  keys: readonly ResolvedEntryKey[],
): { sealed: R[]; forged: (R & { reason: string })[] } {
  const sealed: R[] = [];
  const forged: (R & { reason: string })[] = [];
  for (const row of rows) {
    if (row.reason !== undefined) {
      forged.push({ ...row, reason: row.reason });
      continue;
    }
    const verdict = judgeEntry(
      { tx: row.tx === null ? null : BigInt(row.tx), code: row.code ?? null, digest: row.digest ?? null },
      boundary,
      keys,
    );
    if (verdict.kind === 'forged') forged.push({ ...row, reason: verdict.reason });
    else sealed.push(row);
  }
  return { sealed, forged };
}

/**
 * The key id a well-formed code names when none of `keys` has it, else null: such a row was
 * signed by a key this process does not hold (a rotation not rolled out everywhere yet), so the
 * sealer stops before it instead of calling it forged.
 *
 * @example
 * unknownKeyOf('v1:k2:Xq3…', [k1]); // 'k2'
 */
export function unknownKeyOf(code: string | null | undefined, keys: readonly ResolvedEntryKey[]): string | null {
  const parsed = code ? CODE.exec(code) : null;
  if (!parsed || keys.length === 0) return null;
  return keys.some((k) => k.id === parsed[1]) ? null : parsed[1];
}

/** Code of the error of a sealer that stopped before a row signed with an entry key it does not hold. */
export const ENTRY_KEY_UNKNOWN_CODE = 'AUDIT_ENTRY_KEY_UNKNOWN';

/**
 * Sealing stopped before row `id` (transaction `tx`): its code names entry key `keyId`, which this
 * process does not hold. A sealer that holds it seals the row; until then sealing waits.
 *
 * @example
 * throw entryKeyUnknownError({ id, tx: '905', keyId: 'k2' });
 */
export function entryKeyUnknownError(row: { id: string; tx: string | null; keyId: string }): Error & { code: string } {
  return Object.assign(
    new Error(
      `row ${row.id} (transaction ${row.tx ?? 'none'}) carries a code of entry key "${row.keyId}", which integrity.entryKeys of this process does not hold: sealing stops before it until a process that holds the key seals it (add the key to integrity.entryKeys everywhere)`,
    ),
    { code: ENTRY_KEY_UNKNOWN_CODE },
  );
}

/** Code of the error of a sealer without entry keys on a chain that authenticates entries. */
export const ENTRY_KEYS_MISSING_CODE = 'AUDIT_ENTRY_KEYS_MISSING';

/**
 * The sealer has no entry keys, but the chain authenticates entries from `boundary` on: it seals
 * nothing rather than seal rows it cannot check.
 *
 * @example
 * throw entryKeysMissingError('812');
 */
export function entryKeysMissingError(boundary: string): Error & { code: string } {
  return Object.assign(
    new Error(
      `the seal chain authenticates entries from transaction ${boundary} on, but integrity.entryKeys is not set: nothing is sealed until it is`,
    ),
    { code: ENTRY_KEYS_MISSING_CODE },
  );
}
