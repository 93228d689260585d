import { createHmac } from 'node:crypto';
import { type AuditRecord } from '../audit-entry';
import {
  ENTRY_KEY_UNKNOWN_CODE,
  ENTRY_KEYS_MISSING_CODE,
  entryKeysMissingError,
  entryKeyUnknownError,
  entrySigner,
  judgeEntry,
  judgeSealRows,
  parseEntryKeys,
  SEAL_ENTRY_COLUMNS,
  resolveEntryKeys,
  signEntry,
  unknownKeyOf,
} from './entry-auth';
import { ENTRY_DIGEST_SQL, entryDigest } from './entry-encoding';

const SECRET = 'a-secret-of-at-least-thirty-two-characters';
const OTHER = 'b-secret-of-at-least-thirty-two-characters';
const record: AuditRecord = {
  id: '01937a4c-0000-7000-8000-00000000000a',
  occurredAt: '2026-12-04T10:00:00.000Z',
  action: 'nda_created',
  entityType: 'NDA',
  entityId: 'nda-1',
  userId: 'u1',
  outcome: 'success',
  ip: null,
  userAgent: null,
  requestId: null,
  changes: { title: 'NDA' },
  metadata: null,
};
const hmac = (secret: string, r: AuditRecord) =>
  createHmac('sha256', Buffer.from(secret, 'utf8')).update(entryDigest(r)).digest('base64url');
const MAC = 'A'.repeat(43);

describe('entry keys, one rule at a time', () => {
  it('take no keys from null or undefined, and refuse anything but a list of { id, secret } objects', () => {
    expect(resolveEntryKeys(undefined)).toEqual([]);
    expect(resolveEntryKeys(null)).toEqual([]);
    expect(() => resolveEntryKeys('k1:secret')).toThrow('AuditModule option "integrity.entryKeys" must be a list of { id, secret }');
    expect(() => resolveEntryKeys([null])).toThrow('AuditModule option "integrity.entryKeys[0]" must be an object { id, secret }');
    expect(() => resolveEntryKeys([{ id: 'k1', secret: SECRET }, 'k2'])).toThrow(
      'AuditModule option "integrity.entryKeys[1]" must be an object { id, secret }',
    );
    expect(() => resolveEntryKeys([{ id: 'k1', secret: SECRET, note: 'x' }])).toThrow(
      'AuditModule option "integrity.entryKeys[0].note" is not known; known options: id, secret',
    );
  });

  it('take ids of 1 to 64 letters, digits, dots, dashes or underscores, each once', () => {
    for (const id of ['a', 'A.b_c-9', 'x'.repeat(64)]) expect(resolveEntryKeys([{ id, secret: SECRET }])[0].id).toBe(id);
    for (const id of ['', 'x'.repeat(65), 'a b', ' a', 'a ', 'é', 'a:b', 7]) {
      expect(() => resolveEntryKeys([{ id, secret: SECRET }])).toThrow(
        'AuditModule option "integrity.entryKeys[0].id" must be 1 to 64 letters, digits, dots, dashes or underscores',
      );
    }
    expect(() =>
      resolveEntryKeys([
        { id: 'k1', secret: SECRET },
        { id: 'k2', secret: SECRET },
        { id: 'k1', secret: OTHER },
      ]),
    ).toThrow('AuditModule option "integrity.entryKeys[2].id" must be an id no other entry key has, got "k1"');
  });

  it('take secrets of at least 32 characters, and return frozen keys that print no secret', () => {
    expect(resolveEntryKeys([{ id: 'k1', secret: 's'.repeat(32) }])).toHaveLength(1);
    for (const secret of ['s'.repeat(31), 32, undefined]) {
      expect(() => resolveEntryKeys([{ id: 'k1', secret }])).toThrow(
        'AuditModule option "integrity.entryKeys[0].secret" must be a secret of at least 32 characters (key "k1") (the value is not shown)',
      );
    }
    const keys = resolveEntryKeys([{ id: 'k1', secret: SECRET }]);
    expect(Object.isFrozen(keys)).toBe(true);
    expect(Object.isFrozen(keys[0])).toBe(true);
    expect(JSON.stringify(keys)).not.toContain(SECRET);
  });

  it('are parsed from text whatever the blanks and empty parts, each error naming the key by its place', () => {
    expect(parseEntryKeys(` k1:${SECRET} ,, k2:${OTHER},`)).toEqual([
      { id: 'k1', secret: SECRET },
      { id: 'k2', secret: OTHER },
    ]);
    expect(parseEntryKeys('')).toEqual([]);
    expect(() => parseEntryKeys(`k1:${SECRET},:${OTHER}`)).toThrow('entry key 2 must be <id>:<secret> (the value is not shown)');
    expect(() => parseEntryKeys(`k1:${SECRET},${OTHER}`)).toThrow('entry key 2 must be <id>:<secret> (the value is not shown)');
  });
});

describe('entry codes', () => {
  const [k1, k2] = resolveEntryKeys([
    { id: 'k1', secret: SECRET },
    { id: 'k2.b', secret: OTHER },
  ]);

  it('are made by the first key only, as v1:<id>:<HMAC-SHA256 of the digest>, the same for every record signed with a key', () => {
    expect(entrySigner([])).toBeUndefined();
    const sign = entrySigner([k2, k1]);
    const other = { ...record, action: 'nda_deleted' };
    expect(sign?.(record)).toBe(`v1:k2.b:${hmac(OTHER, record)}`);
    expect(sign?.(other)).toBe(`v1:k2.b:${hmac(OTHER, other)}`);
    expect(signEntry(record, k1)).toBe(`v1:k1:${hmac(SECRET, record)}`);
    expect(signEntry(other, k1)).toBe(`v1:k1:${hmac(SECRET, other)}`);
  });

  it('are marked v2 for a record with personal-data commitments (row encoding 2)', () => {
    const committed = { ...record, commitments: '{"user_id":"c1"}' };
    expect(signEntry(committed, k1)).toBe(`v2:k1:${hmac(SECRET, committed)}`);
  });

  it('judge a row with a code as unchecked without keys or without its digest', () => {
    const code = signEntry(record, k1);
    expect(judgeEntry({ tx: 9n, code, digest: entryDigest(record) }, 5n, [])).toEqual({ kind: 'unchecked' });
    expect(judgeEntry({ tx: 9n, code, digest: null }, 5n, [k1])).toEqual({ kind: 'unchecked' });
    expect(judgeEntry({ tx: 9n, code, digest: entryDigest(record) }, 5n, [k2, k1])).toEqual({ kind: 'authentic' });
  });

  it('judge a malformed code as forged, and name the key of a code no key given has', () => {
    const digest = entryDigest(record);
    const mac = hmac(SECRET, record);
    const malformed = { kind: 'forged', reason: 'its entry code is malformed' };
    for (const code of [
      '',
      `v3:k1:${mac}`,
      `xv1:k1:${mac}`,
      `v1:k1:${mac}x`,
      `v1:k1:${mac.slice(1)}`,
      `v1:k1:${mac.slice(1)}.`,
      `v1::${mac}`,
      `v1:${'k'.repeat(65)}:${mac}`,
      `v1:k 1:${mac}`,
    ]) {
      expect(judgeEntry({ tx: 9n, code, digest }, 5n, [k1])).toEqual(malformed);
    }
    expect(judgeEntry({ tx: 9n, code: `v1:k9:${mac}`, digest }, 5n, [k1, k2])).toEqual({
      kind: 'forged',
      reason: 'its entry code names key "k9", which is not among the entry keys given',
    });
    expect(judgeEntry({ tx: 9n, code: `v1:k2.b:${mac}`, digest }, 5n, [k1, k2])).toEqual({
      kind: 'forged',
      reason: 'its entry code does not match its content',
    });
  });

  it('name an unknown key only of a well-formed code', () => {
    expect(unknownKeyOf('', [k1])).toBeNull();
    expect(unknownKeyOf(`v1:${'k'.repeat(64)}:${MAC}`, [k1])).toBe('k'.repeat(64));
    expect(unknownKeyOf(`v1:k2.b:${MAC}`, [k1, k2])).toBeNull();
    expect(unknownKeyOf(`v1:k2.b:${MAC}`, [k1])).toBe('k2.b');
  });

  it('split a seal’s rows into the sealed and the forged, each forged one with its reason', () => {
    const digest = entryDigest(record);
    const rows = [
      { id: 'legacy', tx: '3', code: null },
      { id: 'no-tx', tx: null },
      { id: 'signed', tx: '9', code: signEntry(record, k1), digest },
      { id: 'unsigned', tx: '9', code: null },
      { id: 'changed', tx: '9', code: signEntry({ ...record, userId: 'mallory' }, k1), digest },
    ];
    expect(judgeSealRows(rows, 5n, [k1])).toEqual({
      sealed: [rows[0], rows[1], rows[2]],
      forged: [
        { ...rows[3], reason: 'it carries no entry code, and was written after entry authentication began (tx 5)' },
        { ...rows[4], reason: 'its entry code does not match its content' },
      ],
    });
  });

  it('stop sealing with errors of stable codes that name the row, the key or the boundary', () => {
    const unknown = entryKeyUnknownError({ id: 'r1', tx: null, keyId: 'k9' });
    expect(unknown.code).toBe(ENTRY_KEY_UNKNOWN_CODE);
    expect(ENTRY_KEY_UNKNOWN_CODE).toBe('AUDIT_ENTRY_KEY_UNKNOWN');
    expect(unknown.message).toMatch(/^row r1 \(transaction none\) carries a code of entry key "k9", which integrity\.entryKeys/);
    expect(entryKeyUnknownError({ id: 'r1', tx: '905', keyId: 'k9' }).message).toContain('(transaction 905)');
    const missing = entryKeysMissingError('812');
    expect(missing.code).toBe(ENTRY_KEYS_MISSING_CODE);
    expect(ENTRY_KEYS_MISSING_CODE).toBe('AUDIT_ENTRY_KEYS_MISSING');
    expect(missing.message).toBe(
      'the seal chain authenticates entries from transaction 812 on, but integrity.entryKeys is not set: nothing is sealed until it is',
    );
  });
});

it('the sealer selects each row’s code and digest under the names judgeSealRows reads', () => {
  expect(SEAL_ENTRY_COLUMNS).toBe(`, l.auth_code AS code, ${ENTRY_DIGEST_SQL} AS digest`);
});
