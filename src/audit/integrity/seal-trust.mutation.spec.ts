import { generateKeyPairSync } from 'node:crypto';
import { EMPTY_ROOT } from './merkle';
import { GENESIS_HASH, keyIdOf, type Seal, sealHash, signSeal } from './seal';
import { checkNewestSeal, SEAL_UNTRUSTED_CODE, distrustSeal, TX_BEHIND_CHAIN_CODE, UntrustedSealError } from './seal-trust';

const { privateKey } = generateKeyPairSync('ed25519');

/** Seal 5, version 1 (made before entry keys: no `entryAuthFrom` at all), signed with `key` unless null. */
function versionOne(fields: Partial<Seal> = {}, key: typeof privateKey | null = privateKey): Seal {
  const unsigned = {
    seq: 5,
    version: 1,
    prevHash: GENESIS_HASH,
    lastTx: '900',
    lastId: '01937a4c-0000-7000-8000-00000000000a',
    horizon: '901',
    rowCount: 0,
    root: EMPTY_ROOT,
    manifest: Buffer.alloc(0),
    sealedAt: 1764300000123,
    ...fields,
  };
  const hash = sealHash(unsigned);
  return { ...unsigned, hash, keyId: key ? keyIdOf(key) : null, signature: key ? signSeal(hash, key) : null };
}

/** What the trust statement returns, as PostgreSQL gives it (each value text or NULL). */
function contextRow(row: Partial<Record<'signed_seq' | 'boundary_seq' | 'boundary_from' | 'next_tx', string | null>> = {}) {
  return { signed_seq: '5', boundary_seq: null, boundary_from: null, next_tx: '1000', ...row };
}

/** A query function that answers the trust statement with `row`, and records what it was asked. */
function answering(row: ReturnType<typeof contextRow>) {
  const asked: string[] = [];
  const query = (sql: string) => {
    asked.push(sql);
    return Promise.resolve([row]);
  };
  return { query, asked };
}

describe('the seals a sealer builds on: edges', () => {
  it('continues a seal made before entry keys, which has no boundary field at all', () => {
    expect(distrustSeal(versionOne(), { signingKey: privateKey, signedSeq: 5, boundary: null, nextTx: 1000n })).toBeNull();
  });

  it('tells the operator why a signed seal ahead of the server is a restore, and what to do', () => {
    const found = distrustSeal(versionOne({ horizon: '4000' }), { signingKey: privateKey, signedSeq: 5, boundary: null, nextTx: 1000n });
    expect(found).toEqual({
      code: TX_BEHIND_CHAIN_CODE,
      detail:
        "seal 5 has a horizon of transaction 4000, ahead of this server's transaction ids (the next is 1000): a trail copied onto " +
        'another server by a logical dump and restore keeps the old ids, and the new rows would lie below the seals; ' +
        "advance the server's transaction ids past it (docs/RUNBOOK.md section 12)",
    });
  });

  it('names its error class, as logs and reporters show it', () => {
    const error = new UntrustedSealError(versionOne(), { code: SEAL_UNTRUSTED_CODE, detail: 'seal 5 is not signed' });
    expect(error.name).toBe('UntrustedSealError');
    expect(error).toBeInstanceOf(Error);
    expect(error.detail).toBe('seal 5 is not signed');
  });
});

describe('checkNewestSeal: the newest seal judged with what the database says', () => {
  it('asks the trust statement of the seal table it is given', async () => {
    const { query, asked } = answering(contextRow());
    await expect(checkNewestSeal(query, '"audit"."audit_seal"', versionOne(), privateKey)).resolves.toBeUndefined();
    expect(asked).toHaveLength(1);
    expect(asked[0]).toContain('FROM "audit"."audit_seal" AS s');
  });

  it('throws the untrusted seal, with its code and detail, when the rules refuse it', async () => {
    const newest = versionOne({}, null);
    const { query } = answering(contextRow({ signed_seq: '4' }));
    const thrown = await checkNewestSeal(query, 'audit_seal', newest, privateKey).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(UntrustedSealError);
    expect(thrown).toMatchObject({
      code: SEAL_UNTRUSTED_CODE,
      seal: { seq: 5 },
      detail: expect.stringContaining('seal 5 is not signed, while seal 4 before it is') as unknown,
    });
  });

  it('continues an unsigned seal on a chain that no seal of which is signed (NULL signed_seq)', async () => {
    const { query } = answering(contextRow({ signed_seq: null }));
    await expect(checkNewestSeal(query, 'audit_seal', versionOne({}, null), privateKey)).resolves.toBeUndefined();
  });

  it('reads the boundary the chain recorded, and refuses a seal that drops it', async () => {
    const newest = versionOne({ version: 2, entryAuthFrom: '850' });
    const moved = answering(contextRow({ boundary_seq: '3', boundary_from: '800' }));
    await expect(checkNewestSeal(moved.query, 'audit_seal', newest, privateKey)).rejects.toMatchObject({
      detail: 'seal 5 moves the entry-authentication boundary (850, seal 3 recorded 800)',
    });
    const kept = answering(contextRow({ boundary_seq: '3', boundary_from: '850' }));
    await expect(checkNewestSeal(kept.query, 'audit_seal', newest, privateKey)).resolves.toBeUndefined();
    const none = answering(contextRow());
    await expect(checkNewestSeal(none.query, 'audit_seal', newest, privateKey)).resolves.toBeUndefined();
  });

  it("compares the seal with the server's next transaction id, as text from PostgreSQL", async () => {
    const newest = versionOne({ horizon: '1001' });
    await expect(checkNewestSeal(answering(contextRow()).query, 'audit_seal', newest, privateKey)).rejects.toMatchObject({
      code: TX_BEHIND_CHAIN_CODE,
    });
    await expect(
      checkNewestSeal(answering(contextRow({ next_tx: '1001' })).query, 'audit_seal', newest, privateKey),
    ).resolves.toBeUndefined();
  });
});
