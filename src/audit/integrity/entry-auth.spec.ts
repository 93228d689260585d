import { AuditEntryNormalizer } from '../audit-entry';
import { createHmac } from 'node:crypto';
import { entrySigner, judgeEntry, judgeSealRows, parseEntryKeys, resolveEntryKeys, signEntry, unknownKeyOf } from './entry-auth';
import { entryDigest, jsonbText } from './entry-encoding';
import { resolveIntegrityOptions } from './integrity-options';

const SECRET_A = 'a-secret-of-at-least-thirty-two-characters';
const SECRET_B = 'b-secret-of-at-least-thirty-two-characters';

describe('entry keys', () => {
  it('are validated at start-up, the error naming the bad key and never its secret', () => {
    const short = 'too-short-secret';
    expect(() =>
      resolveIntegrityOptions({
        entryKeys: [
          { id: 'k1', secret: SECRET_A },
          { id: 'k2', secret: short },
        ],
      }),
    ).toThrow(
      'AuditModule option "integrity.entryKeys[1].secret" must be a secret of at least 32 characters (key "k2") (the value is not shown)',
    );
    try {
      resolveIntegrityOptions({ entryKeys: [{ id: 'k2', secret: short }] });
    } catch (error) {
      expect((error as Error).message).not.toContain(short);
    }
    expect(() => resolveIntegrityOptions({ entryKeys: [{ id: 'bad id', secret: SECRET_A }] })).toThrow('integrity.entryKeys[0].id');
    expect(() =>
      resolveIntegrityOptions({
        entryKeys: [
          { id: 'k', secret: SECRET_A },
          { id: 'k', secret: SECRET_B },
        ],
      }),
    ).toThrow('an id no other entry key has');
    expect(() => resolveIntegrityOptions({ entryKeys: 'k:secret' })).toThrow('integrity.entryKeys');
    expect(JSON.stringify(resolveIntegrityOptions({ entryKeys: [{ id: 'k1', secret: SECRET_A }] }))).not.toContain(SECRET_A);
  });

  it('are read from one variable as <id>:<secret>, comma-separated, the signing key first', () => {
    expect(parseEntryKeys(`k2:${SECRET_B}, k1:${SECRET_A}:with-colon`)).toEqual([
      { id: 'k2', secret: SECRET_B },
      { id: 'k1', secret: `${SECRET_A}:with-colon` },
    ]);
    expect(() => parseEntryKeys(SECRET_A)).toThrow('entry key 1 must be <id>:<secret> (the value is not shown)');
  });

  it('rotate: the first key signs, an older one still verifies, an unknown or wrong one does not', () => {
    const [newKey, oldKey] = resolveEntryKeys([
      { id: 'new', secret: SECRET_B },
      { id: 'old', secret: SECRET_A },
    ]);
    const signedBefore = new AuditEntryNormalizer([], 65536, entrySigner([oldKey])).normalize({ action: 'nda_created' }).record;
    const signedNow = new AuditEntryNormalizer([], 65536, entrySigner([newKey, oldKey])).normalize({ action: 'nda_created' }).record;
    expect(signedNow.authCode).toMatch(/^v1:new:[A-Za-z0-9_-]{43}$/);
    const stored = (record: typeof signedNow) => ({ tx: 10n, code: record.authCode ?? null, digest: entryDigest(record) });
    expect(judgeEntry(stored(signedBefore), 5n, [newKey, oldKey])).toEqual({ kind: 'authentic' });
    expect(judgeEntry(stored(signedNow), 5n, [newKey, oldKey])).toEqual({ kind: 'authentic' });
    expect(judgeEntry(stored(signedBefore), 5n, [newKey])).toMatchObject({ kind: 'forged', reason: expect.stringContaining('key "old"') });
    const changed = { ...signedNow, userId: 'mallory' };
    expect(judgeEntry(stored({ ...changed, authCode: signedNow.authCode }), 5n, [newKey])).toMatchObject({ kind: 'forged' });
  });

  it('judge a row without a code by the boundary: before it (or without one) legacy, from it on forged', () => {
    expect(judgeEntry({ tx: 4n, code: null, digest: null }, 5n, null)).toEqual({ kind: 'legacy' });
    expect(judgeEntry({ tx: null, code: null, digest: null }, 5n, null)).toEqual({ kind: 'legacy' });
    expect(judgeEntry({ tx: 9n, code: null, digest: null }, null, null)).toEqual({ kind: 'legacy' });
    expect(judgeEntry({ tx: 5n, code: null, digest: null }, 5n, null)).toMatchObject({ kind: 'forged' });
    expect(judgeEntry({ tx: 5n, code: 'v1:k:x', digest: null }, 5n, null)).toEqual({ kind: 'unchecked' });
  });

  it('name the key of a well-formed code that no key given has, and nothing else', () => {
    const keys = resolveEntryKeys([{ id: 'k1', secret: SECRET_A }]);
    const mac = 'A'.repeat(43);
    expect(unknownKeyOf(`v1:k2:${mac}`, keys)).toBe('k2');
    expect(unknownKeyOf(`v1:k1:${mac}`, keys)).toBeNull();
    expect(unknownKeyOf(`v2:k2:${mac}`, keys)).toBe('k2');
    expect([null, undefined, 'v1:k2:short', `v3:k2:${mac}`].map((code) => unknownKeyOf(code, keys))).toEqual([null, null, null, null]);
    expect(unknownKeyOf(`v1:k2:${mac}`, [])).toBeNull();
  });

  it('leave out of a seal a row already found forged by its position, whatever its code', () => {
    const [key] = resolveEntryKeys([{ id: 'k1', secret: SECRET_A }]);
    const rows = [
      { id: 'a', tx: '3', code: null },
      { id: 'b', tx: '3', code: null, reason: 'older than the horizon' },
    ];
    expect(judgeSealRows(rows, 5n, [key])).toEqual({ sealed: [rows[0]], forged: [rows[1]] });
  });

  it.each([32, 64, 65, 200])('make the code as HMAC-SHA256 of the entry digest, with a secret of %i characters', (length) => {
    const secret = 's'.repeat(length - 1) + String(length % 10);
    const [key] = resolveEntryKeys([{ id: 'k1', secret }]);
    const record = new AuditEntryNormalizer([], 65536).normalize({ action: 'nda_created', changes: { a: [1, 'é'] } }).record;
    const expected = createHmac('sha256', Buffer.from(secret)).update(entryDigest(record)).digest('base64url');
    expect(signEntry(record, key)).toBe(`v1:k1:${expected}`);
    expect(signEntry(record, key)).toBe(`v1:k1:${expected}`);
  });

  it('count the code in the entry size the normalizer reports', () => {
    const [key] = resolveEntryKeys([{ id: 'k1', secret: SECRET_A }]);
    const { record, bytes } = new AuditEntryNormalizer([], 65536, entrySigner([key])).normalize({
      action: 'nda_created',
      changes: { a: 1 },
    });
    expect(bytes).toBe(Buffer.byteLength(JSON.stringify(record)));
  });
});

describe('jsonbText', () => {
  it('writes JSON as PostgreSQL writes jsonb out', () => {
    expect(jsonbText({ bb: 1, a: [1e21, 'x', 1.5e-7, -2e-3], é: {}, zz: [] })).toBe(
      '{"a": [1000000000000000000000, "x", 0.00000015, -0.002], "bb": 1, "zz": [], "é": {}}',
    );
  });
});
