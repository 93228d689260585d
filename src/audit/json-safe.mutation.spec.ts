import { compileRedactor } from './redaction';
import { convertJsonSafe, hasDataPrototype, REDACTED, toJsonSafe, UNREADABLE } from './json-safe';

// What the mutation run of json-safe.ts found no test for: exact budget edges, the byte count it reports, and by-name-only conversions nested in others.
const none = () => false;
const isRedacted = compileRedactor(['token']);
const nest = (levels: number, bottom: unknown) => {
  let value = bottom;
  for (let i = 0; i < levels; i++) value = { child: value };
  return value;
};

describe('convertJsonSafe, at its edges', () => {
  it('marks a string cut at the budget with the text [Truncated], and keeps one exactly as long as the budget whole', () => {
    expect(convertJsonSafe('x'.repeat(20), none, 10)).toEqual({ value: 'xxxxxxxxxx[Truncated]', complete: false, bytes: 22, faults: 0 });
    expect(convertJsonSafe('x'.repeat(10), none, 10)).toEqual({ value: 'xxxxxxxxxx', complete: true, bytes: 12, faults: 0 });
  });

  it('cuts a later string to the room the earlier values left', () => {
    const { value, complete } = convertJsonSafe({ a: 'x'.repeat(600), b: 'y'.repeat(600) }, none, 1000);
    expect(value).toEqual({ a: 'x'.repeat(600), b: `${'y'.repeat(387)}[Truncated]` });
    expect(complete).toBe(false);
  });

  it('reads the next key while the bytes used are exactly the budget, and none once past it', () => {
    // {"a":"x" counts 9 bytes: at a budget of 9, b is still read (and cut to nothing), c no longer; at 8, b is not read.
    expect(convertJsonSafe({ a: 'x', b: 'y', c: 'z' }, none, 9).value).toEqual({ a: 'x', b: '[Truncated]' });
    expect(convertJsonSafe({ a: 'x', b: 'y', c: 'z' }, none, 8).value).toEqual({ a: 'x' });
  });

  it('reports about the serialized size: exactly for texts in arrays and objects, a Map entry with its comma', () => {
    expect(convertJsonSafe(['a', 'b', 'c'], none, 1024).bytes).toBe(JSON.stringify(['a', 'b', 'c']).length);
    expect(convertJsonSafe({ a: 'x', bc: 'y' }, none, 1024).bytes).toBe(JSON.stringify({ a: 'x', bc: 'y' }).length);
    expect(convertJsonSafe([], none, 1024).bytes).toBe(2);
    expect(
      convertJsonSafe(
        new Map([
          ['a', 'x'],
          ['bc', 'y'],
        ]),
        none,
        1024,
      ).bytes,
    ).toBe(19);
    expect(convertJsonSafe([true, null, undefined, 1], none, 1024).bytes).toBe(2 + 3 + 5 + 4 + 4 + 8);
  });

  it('keeps 32 nested objects whole and replaces the 33rd by [MaxDepth]', () => {
    expect(toJsonSafe(nest(32, 'bottom'), none)).toEqual(nest(32, 'bottom'));
    expect(toJsonSafe(nest(33, 'bottom'), none)).toEqual(nest(32, '[MaxDepth]'));
  });

  it('converts an object key of a Map one level further down, within the same depth bound', () => {
    const map = (key: unknown) => new Map([[key, 'v']]);
    expect(toJsonSafe(nest(30, map({ k: 1 })), none)).toEqual(nest(30, { '{"k":1}': 'v' }));
    expect(toJsonSafe(nest(31, map({ k: 1 })), none)).toEqual(nest(31, { '"[MaxDepth]"': 'v' }));
  });

  it('gives an array item whose getter throws as [Unreadable], and counts it', () => {
    const array: unknown[] = ['a', 'b'];
    Object.defineProperty(array, 0, {
      get() {
        throw new Error('no');
      },
    });
    expect(convertJsonSafe(array, none, 1024)).toMatchObject({ value: [UNREADABLE, 'b'], faults: 1 });
  });

  it('takes a null or a text by name only as it is', () => {
    expect(convertJsonSafe(null, isRedacted, 1024, true).value).toBeNull();
    expect(convertJsonSafe('token=abc', isRedacted, 1024, true).value).toBe('token=abc');
    expect(convertJsonSafe(['token', 'abc'], isRedacted, 1024, true).value).toEqual(['token', 'abc']);
  });

  it('redacts the values after a diff converted by name only as any others: by name, by text and by pair', () => {
    const diff = convertJsonSafe({ token: 't', title: ['token', 'abc'] }, isRedacted, 1024, true).value;
    expect(toJsonSafe({ diff, note: 'token=abc', pair: ['token', 'abc'] }, isRedacted)).toEqual({
      diff: { token: REDACTED, title: ['token', 'abc'] },
      note: `token=${REDACTED}`,
      pair: ['token', REDACTED],
    });
  });

  it('writes a __proto__ key as a plain data property, like any other key', () => {
    const value = toJsonSafe(JSON.parse('{"__proto__": {"a": 1}, "b": 2}'), none) as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    const plain = { enumerable: true, writable: true, configurable: true };
    expect(Object.getOwnPropertyDescriptor(value, '__proto__')).toEqual({ value: { a: 1 }, ...plain });
    expect(Object.getOwnPropertyDescriptor(value, 'b')).toEqual({ value: 2, ...plain });
  });
});

describe('hasDataPrototype', () => {
  it('is true for what JSON writes as its own properties: a plain object, one without a prototype, one converted by name only', () => {
    expect(hasDataPrototype({ a: 1 })).toBe(true);
    expect(hasDataPrototype(Object.create(null) as object)).toBe(true);
    expect(hasDataPrototype(convertJsonSafe({ a: 1 }, none, 1024, true).value as object)).toBe(true);
  });

  it('is false for any other prototype', () => {
    expect(hasDataPrototype(new Date(0))).toBe(false);
    expect(hasDataPrototype([])).toBe(false);
    expect(hasDataPrototype(new (class Point {})())).toBe(false);
    expect(hasDataPrototype(Object.create({}) as object)).toBe(false);
  });
});
