import { createHash } from 'node:crypto';
import { type AuditRecord } from '../audit-entry';
import * as recordJson from '../record-json';
import { entryDigest } from './entry-encoding';

// The digest writes a payload's jsonb text from the value itself when the value is plain JSON data,
// and from its JSON text otherwise: these hold both ways to one answer, and each value to its way.
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

/** The digest, or the name of the error it throws. */
function outcome(changes: unknown): string {
  try {
    return entryDigest(record({ changes: changes as AuditRecord['changes'] })).toString('hex');
  } catch (error) {
    return `throws ${(error as Error).name}`;
  }
}

/** A stand-in whose JSON text is `value`'s: its digest goes through that text, parsed back. */
function viaText(value: unknown): unknown {
  return {
    toJSON: () => {
      const text = JSON.stringify(value);
      return text === undefined ? undefined : (JSON.parse(text) as unknown);
    },
  };
}

const manyKeys = Object.fromEntries(
  ['q', 'bb', 'a', 'zzz', 'B', 'ab', 'c', 'Aa', 'k', 'x1', 'm', 'x', 'dd', 'e', 'f', 'g', 'h'].map((k, i) => [k, i]),
);
const bare = Object.assign(Object.create(null) as object, { b: 1, a: [true, false] });

/** JSON data the digest writes from the value, without its JSON text. */
const PLAIN: [string, unknown][] = [
  ['texts JSON writes escaped, alone', ['"', '\n', '\\']],
  ['texts', ['', 'plain text!', ' ', '#~', 'a"b', 'a\\b', 'line\nbreak', '\x7f', 'é', '\u2028', '😀']],
  ['texts none of which JSON escapes, some not ASCII', ['', 'plain', '\x7f', 'é', '\u2028', '😀', { ké: 'zoë' }]],
  ['integers', [0, -0, 7, -7, 2 ** 53, 1e20, 123456789012345680000]],
  ['numbers JSON writes with a fraction or an exponent', [1.5, -0.25, 123.456, 1e21, -1e21, 1.5e21, 1e-7, -1.5e-7, 5e-324]],
  ['booleans and null', [true, false, null]],
  ['arrays', [[], [1], [[1, [2]], {}], [null, 'a']]],
  ['keys of one length in any order', { b: 1, a: 2, c: { y: 1, x: 2 } }],
  ['keys of several lengths', { bb: 1, a: 2, ab: 3, B: 4, ccc: 5 }],
  ['more than sixteen keys', manyKeys],
  ['keys that are not ASCII', { é: 1, z: 2, ab: 3, 'a"': 4 }],
  ['keys that sort by their UTF-8 bytes', { 'é\u0800': 1, '😀': 2, '\uff61a': 3 }],
  ['keys without any ASCII character', { 'é\u0800': 1, '😀': 2 }],
  ['keys to escape', { 'k"': 1, 'k\\': 2, k: 3, 'a\n': 4 }],
  ['an object without a prototype', bare],
  ['a __proto__ key', JSON.parse('{"__proto__": {"x": 1}, "b": 2}') as unknown],
];

/** Values whose JSON text is not what they hold: the digest takes their text. */
const NOT_PLAIN: [string, unknown][] = [
  ['a Date', new Date(0)],
  ['a boxed string', Object('ab') as unknown],
  ['a boxed number', Object(1) as unknown],
  ['NaN', [Number.NaN]],
  ['Infinity', { a: Number.POSITIVE_INFINITY }],
  // eslint-disable-next-line no-sparse-arrays -- the hole is the case
  ['an array with a hole', [1, , 3]],
  ['a member that is undefined', { a: undefined, b: 1 }],
  ['a function member', { f: () => 1, b: 1 }],
  ['a Map', new Map([[1, 2]])],
  [
    'a class instance',
    new (class Point {
      x = 1;
    })(),
  ],
  ['a toJSON of its own', { toJSON: () => 'x' }],
  ['a toJSON it does not list', Object.defineProperty({ a: 1 }, 'toJSON', { value: () => 'x', enumerable: false })],
  ['a typed array', new Uint8Array([1, 2])],
];

describe('the entry digest, written from the value or from its JSON text', () => {
  afterEach(() => jest.restoreAllMocks());

  it.each([...PLAIN, ...NOT_PLAIN])('agrees with its JSON text on %s', (_name, value) => {
    expect(outcome(value)).toBe(outcome(viaText(value)));
    expect(outcome({ nested: [value] })).toBe(outcome(viaText({ nested: [value] })));
  });

  it.each(PLAIN)('writes %s without parsing their JSON text back', (_name, value) => {
    const parse = jest.spyOn(JSON, 'parse');
    entryDigest(record({ changes: { value } as AuditRecord['changes'], metadata: { value } as AuditRecord['metadata'] }));
    expect(parse).not.toHaveBeenCalled();
  });

  it('writes no payload, null or undefined, as NULL, without any JSON text', () => {
    const text = jest.spyOn(recordJson, 'payloadJson');
    const none = entryDigest(record({ changes: null, metadata: null }));
    expect(entryDigest(record({ changes: undefined as unknown as null, metadata: undefined as unknown as null }))).toEqual(none);
    expect(text).not.toHaveBeenCalled();
    expect(none.toString('hex')).toBe(
      sha('audit-entry-v136:01937a4c-0000-7000-8000-00000000000a16:179637840012300011:nda_created3:NDA~4:zoë7:success8:10.0.0.1~3:r-1~~'),
    );
  });

  it.each(NOT_PLAIN)('writes %s from its JSON text, parsed back', (_name, value) => {
    const parse = jest.spyOn(JSON, 'parse');
    entryDigest(record({ changes: value as AuditRecord['changes'] }));
    expect(parse).toHaveBeenCalled();
  });

  it('writes what the JSON text of a value that is not plain data holds', () => {
    expect(outcome(new Date(0))).toBe(outcome('1970-01-01T00:00:00.000Z'));
    expect(outcome({ a: undefined, b: 1 })).toBe(outcome({ b: 1 }));
    expect(outcome(Object.defineProperty({ a: 1 }, 'toJSON', { value: () => 'x', enumerable: false }))).toBe(outcome('x'));
    expect(outcome([Number.NaN, 1])).toBe(outcome([null, 1]));
  });

  it('lets an error other than "not plain" out, as the JSON text would', () => {
    let reads = 0;
    // A getter that fails once: had the error been swallowed, the JSON text would read it again and succeed.
    const flaky = {
      get a() {
        reads += 1;
        if (reads === 1) throw new RangeError('first read fails');
        return 1;
      },
    };
    expect(outcome(flaky)).toBe('throws RangeError');
  });
});

describe('the entry digest of version 2 (personal-data commitments)', () => {
  it('leaves out user, ip and user agent, and covers the commitments last', () => {
    const commitments = '{"user_id":"c1"}';
    const text =
      'audit-entry-v2' +
      '36:01937a4c-0000-7000-8000-00000000000a' +
      '16:1796378400123000' +
      '11:nda_created' +
      '3:NDA' +
      '~' +
      '7:success' +
      '3:r-1' +
      '31:{"a": [1, "x"], "title": "NDA"}' +
      '~' +
      `16:${commitments}`;
    expect(entryDigest(record({ commitments })).toString('hex')).toBe(sha(text));
    expect(entryDigest(record({ commitments, userId: 'other', ip: null, userAgent: 'x' }))).toEqual(entryDigest(record({ commitments })));
  });
});
