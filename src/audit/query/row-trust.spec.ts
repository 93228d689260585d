import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { resolveEntryKeys } from '../integrity/entry-auth';
import { keyIdOf, type Seal, sealHash, signSeal } from '../integrity/seal';
import { checkpointsCarryingQuery, erasureEntriesQuery, erasureEntryAuthentic, sealCheckQuery, sealProblem } from './row-trust';

const { privateKey: mine } = generateKeyPairSync('ed25519');
const { privateKey: theirs } = generateKeyPairSync('ed25519');
const manifest = randomBytes(48);

/** Seal 7 as `sealCheckQuery` selects it: no manifest, its SHA-256 beside. */
function selected(change: Partial<Seal> = {}, signedBefore: string | null = null, key = mine): Record<string, unknown> {
  const unsigned = {
    seq: 7,
    version: 2,
    prevHash: randomBytes(32),
    lastTx: '900',
    lastId: '0193a1c2-7b1e-7c3d-9e4f-0123456789ab',
    horizon: '901',
    rowCount: 2,
    root: randomBytes(32),
    manifest,
    sealedAt: 1_764_000_000_000,
    entryAuthFrom: '812',
  };
  const hash = sealHash(unsigned);
  const seal: Seal = { ...unsigned, hash, keyId: keyIdOf(key), signature: signSeal(hash, key), ...change };
  return {
    seq: String(seal.seq),
    version: seal.version,
    prev_hash: seal.prevHash,
    last_tx: seal.lastTx,
    last_id: seal.lastId,
    horizon: seal.horizon,
    row_count: seal.rowCount,
    root: seal.root,
    manifest: Buffer.alloc(0),
    manifest_sha256: createHash('sha256').update(seal.manifest).digest(),
    sealed_at: String(seal.sealedAt),
    hash: seal.hash,
    key_id: seal.keyId,
    signature: seal.signature,
    entry_auth_from: seal.entryAuthFrom,
    retention_month: null,
    signed_before: signedBefore,
  };
}

describe('sealProblem', () => {
  it('trusts a seal signed by the trail signing key, and one made before signing was turned on', () => {
    expect(sealProblem(selected(), mine)).toBeNull();
    expect(sealProblem(selected({ keyId: null, signature: null }), mine)).toBeNull();
  });

  it('names a seal signed by another key, a signature that does not verify, and an unsigned seal after a signed one', () => {
    expect(sealProblem(selected({}, null, theirs), mine)).toBe(
      `seal 7 is signed with key ${keyIdOf(theirs)}, not with this trail's signing key ${keyIdOf(mine)}`,
    );
    expect(sealProblem(selected({ signature: randomBytes(64) }), mine)).toBe(
      `seal 7 is signed with key ${keyIdOf(mine)}, but its signature does not verify`,
    );
    expect(sealProblem(selected({ keyId: null, signature: null }, '3'), mine)).toBe('seal 7 is not signed, while seal 3 before it is');
  });

  it('names a seal whose fields or manifest no longer match its hash, with or without the signing key', () => {
    expect(sealProblem(selected({ rowCount: 3 }), mine)).toBe('seal 7 does not match its own hash');
    expect(sealProblem({ ...selected(), manifest_sha256: randomBytes(32) }, null)).toBe('seal 7 does not match its own hash');
    expect(sealProblem({ ...selected(), sealed_at: null }, null)).toBe('seal 7 does not match its own hash');
  });

  it('checks only the hash without the signing key, and names a seal that is gone', () => {
    expect(sealProblem(selected({ signature: randomBytes(64) }), null)).toBeNull();
    expect(sealProblem(undefined, mine)).toBe('the seal that holds it is gone');
  });
});

describe('erasureEntryAuthentic', () => {
  const keys = resolveEntryKeys([{ id: 'k1', secret: randomBytes(32).toString('base64') }]);
  const entry = (code: string | null, tx = '950', boundary: string | null = '812') => ({ tx, code, digest: randomBytes(32), boundary });

  it('counts no entry without an authentic one: no code after the boundary, a code of another key, a malformed code', () => {
    expect(erasureEntryAuthentic([], keys)).toBe(false);
    expect(erasureEntryAuthentic([entry(null)], keys)).toBe(false);
    expect(erasureEntryAuthentic([entry(`v1:k9:${'A'.repeat(43)}`)], keys)).toBe(false);
    expect(erasureEntryAuthentic([entry('made up')], keys)).toBe(false);
    expect(erasureEntryAuthentic([entry(`v1:k1:${'A'.repeat(43)}`)], keys)).toBe(false);
  });

  it('counts an entry written before entry authentication began, and, without the entry keys, any entry that carries a code', () => {
    expect(erasureEntryAuthentic([entry(null, '700')], keys)).toBe(true);
    expect(erasureEntryAuthentic([entry(null), entry(null, '700')], keys)).toBe(true);
    expect(erasureEntryAuthentic([entry(null, '950', null)], keys)).toBe(true);
    expect(erasureEntryAuthentic([{ ...entry(null), tx: null }], keys)).toBe(true);
    expect(erasureEntryAuthentic([entry(`v1:k9:${'A'.repeat(43)}`)], [])).toBe(true);
    expect(erasureEntryAuthentic([entry(null)], [])).toBe(false);
  });
});

describe('the row read trust queries', () => {
  it('read a seal without its manifest, which the server hashes, and the first signed seal before it', () => {
    const text = sealCheckQuery('"public"."audit_seal"', 42);
    expect(text).toContain(`'\\x'::bytea AS manifest, pg_catalog.sha256(s.manifest) AS manifest_sha256`);
    expect(text).toContain(`WHERE s.seq = '42'::bigint`);
    expect(text).toMatch(/b\.signature IS NOT NULL AND b\.seq < s\.seq ORDER BY b\.seq LIMIT 1\) AS signed_before/);
  });

  it('find the checkpoints that carry an erasure, and the entries that claim it with their codes and the boundary', () => {
    expect(checkpointsCarryingQuery('"public"."audit_seal"', 'e-1')).toContain(
      `pg_catalog.strpos(s.retention_erasures, '"e-1": {"rows"') > 0`,
    );
    const entries = erasureEntriesQuery('"public"."audit_log"', '"public"."audit_seal"', 'e-1');
    expect(entries).toContain(`l.entity_type = 'audit_erasure' AND l.entity_id = 'e-1' AND l.action = 'audit_erasure'`);
    expect(entries).toContain('l.auth_code AS code');
    expect(entries).toMatch(/b\.entry_auth_from IS NOT NULL ORDER BY b\.seq LIMIT 1\) AS boundary/);
  });
});
