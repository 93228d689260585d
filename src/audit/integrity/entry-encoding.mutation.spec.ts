import { createHash } from 'node:crypto';
import { type AuditRecord } from '../audit-entry';
import { ENTRY_DIGEST_SQL, ENTRY_ENCODING_V1, entryDigest, jsonbText } from './entry-encoding';

/** The version-1 branch of the digest's SQL (rows without personal-data commitments). */
const ENTRY_DIGEST_V1_SQL = ENTRY_DIGEST_SQL.slice(ENTRY_DIGEST_SQL.indexOf(' THEN ') + 6, ENTRY_DIGEST_SQL.indexOf(' ELSE '));

const record = (over: Partial<AuditRecord> = {}): AuditRecord => ({
  id: '01937A4C-0000-7000-8000-00000000000A',
  occurredAt: '2026-12-04T10:00:00.123Z',
  action: 'nda_created',
  entityType: 'NDA',
  entityId: null,
  userId: 'zoë',
  outcome: 'success',
  ip: '10.0.0.1',
  userAgent: null,
  requestId: 'r-1',
  changes: { title: 'NDA', a: [1, 'x'] },
  metadata: null,
  ...over,
});
const sha = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

describe('entryDigest', () => {
  it('hashes the version-1 text: the prefix, then each field as its UTF-8 byte length, ":" and the text, or "~" for NULL', () => {
    const text =
      'audit-entry-v1' +
      '36:01937a4c-0000-7000-8000-00000000000a' +
      '16:1796378400123000' +
      '11:nda_created' +
      '3:NDA' +
      '~' +
      '4:zoë' +
      '7:success' +
      '8:10.0.0.1' +
      '~' +
      '3:r-1' +
      '31:{"a": [1, "x"], "title": "NDA"}' +
      '~';
    expect(ENTRY_ENCODING_V1).toBe('audit-entry-v1');
    expect(entryDigest(record()).toString('hex')).toBe(sha(text));
  });

  it('writes the epoch itself as 0 microseconds, a time before it as a negative number, and metadata as jsonb text', () => {
    const text = (micros: string) =>
      'audit-entry-v1' +
      '36:01937a4c-0000-7000-8000-00000000000a' +
      micros +
      '11:nda_created' +
      '3:NDA~4:zoë7:success8:10.0.0.1~3:r-1' +
      '~' +
      '9:{"b": {}}';
    const at = (occurredAt: string) => entryDigest(record({ occurredAt, changes: null, metadata: { b: {} } })).toString('hex');
    expect(at('1970-01-01T00:00:00.000Z')).toBe(sha(text('1:0')));
    expect(at('1969-12-31T23:59:59.999Z')).toBe(sha(text('5:-1000')));
  });

  it('is what PostgreSQL computes from the stored row: the same prefix and field rule in its SQL', () => {
    expect(ENTRY_DIGEST_V1_SQL).toContain(`'audit-entry-v1'`);
    expect(ENTRY_DIGEST_V1_SQL.match(/leaf_fields\.c(\d+)/g)?.filter((_, i) => i % 2 === 0)).toEqual(
      [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((i) => `leaf_fields.c${i}`),
    );
  });
});

describe('jsonbText', () => {
  it('writes scalars as jsonb does', () => {
    expect(jsonbText(null)).toBe('null');
    expect(jsonbText(true)).toBe('true');
    expect(jsonbText(false)).toBe('false');
    expect(jsonbText('a "q" \\ \n é')).toBe('"a \\"q\\" \\\\ \\n é"');
    expect(jsonbText(0)).toBe('0');
    expect(jsonbText(-42)).toBe('-42');
    expect(jsonbText(1.5)).toBe('1.5');
    expect(jsonbText(123456789012345680000)).toBe('123456789012345680000');
  });

  it('writes numbers JSON gives with an exponent in plain decimal, as numeric prints them', () => {
    expect(jsonbText(1e21)).toBe('1000000000000000000000');
    expect(jsonbText(-1e21)).toBe('-1000000000000000000000');
    expect(jsonbText(1.5e21)).toBe('1500000000000000000000');
    expect(jsonbText(-2.25e22)).toBe('-22500000000000000000000');
    expect(jsonbText(1.5e-7)).toBe('0.00000015');
    expect(jsonbText(-1.23e-18)).toBe('-0.00000000000000000123');
    expect(jsonbText(1e-7)).toBe('0.0000001');
  });

  it('writes arrays and objects with ", " and ": ", empty ones as [] and {}', () => {
    expect(jsonbText([])).toBe('[]');
    expect(jsonbText({})).toBe('{}');
    expect(jsonbText([1])).toBe('[1]');
    expect(jsonbText([1, [2, 'x'], { k: null }])).toBe('[1, [2, "x"], {"k": null}]');
    expect(jsonbText({ k: [true] })).toBe('{"k": [true]}');
  });

  it('orders keys by length, then by their bytes', () => {
    expect(jsonbText({ bb: 1, a: 2, ab: 3, B: 4, ccc: 5 })).toBe('{"B": 4, "a": 2, "ab": 3, "bb": 1, "ccc": 5}');
    expect(jsonbText({ é: 1, z: 2, ab: 3, 'a"': 4 })).toBe('{"z": 2, "a\\"": 4, "ab": 3, "é": 1}');
    // Same UTF-16 length and same UTF-8 length, but code units and bytes order them differently.
    expect(jsonbText({ '😀': 1, '\uff61a': 2 })).toBe('{"\uff61a": 2, "😀": 1}');
    expect(jsonbText({ é: 1, ab: 2 })).toBe('{"ab": 2, "é": 1}');
    expect(jsonbText({ éé: 1, abc: 2 })).toBe('{"abc": 2, "éé": 1}');
  });
});

describe('entry encoding, what its mutation run left alive', () => {
  it('writes a field left undefined as NULL', () => {
    expect(entryDigest(record({ ip: undefined as unknown as null, userAgent: undefined as unknown as null }))).toEqual(
      entryDigest(record({ ip: null, userAgent: null })),
    );
  });

  it('orders keys of one length whatever order they were given in', () => {
    expect(jsonbText({ b: 1, a: 2 })).toBe('{"a": 2, "b": 1}');
    expect(jsonbText({ a: 2, b: 1 })).toBe('{"a": 2, "b": 1}');
    expect(jsonbText({ c: 3, B: 2, a: 1 })).toBe('{"B": 2, "a": 1, "c": 3}');
    expect(jsonbText({ a: 1, c: 3, B: 2 })).toBe('{"B": 2, "a": 1, "c": 3}');
  });

  it('orders keys without any ASCII character by UTF-8 length too, not by UTF-16 length', () => {
    // Both are two UTF-16 code units; '😀' is 4 bytes, 'é\u0800' 5.
    expect(jsonbText({ 'é\u0800': 1, '😀': 2 })).toBe('{"😀": 2, "é\u0800": 1}');
  });

  it('joins the fields in its SQL with ||, as the text the digest covers', () => {
    expect(ENTRY_DIGEST_V1_SQL).toContain(`'audit-entry-v1' || COALESCE(`);
    expect(ENTRY_DIGEST_V1_SQL.split(`, '~') || COALESCE(`)).toHaveLength(12);
  });
});
