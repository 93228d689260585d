import { compileRedactor } from './redaction';
import { convertJsonSafe, REDACTED, toJsonSafe, TRUNCATED } from './json-safe';

// The conversion on its own: its byte budget, its depth bound, and the [name, value] pairs it redacts.
const none = () => false;
const isRedacted = compileRedactor(['token']);

describe('convertJsonSafe', () => {
  it.each([
    ['empty arrays', Array.from({ length: 5000 }, () => [])],
    ['empty objects under keys', Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, {}]))],
    ['one-character strings', Array.from({ length: 5000 }, () => 'a')],
    ['a Map of numbers to strings', new Map(Array.from({ length: 5000 }, (_, i) => [i, 'a']))],
    ['a long string', { text: 'x'.repeat(5000) }],
  ])('keeps %s within the byte budget, and says it was cut', (_shape, value) => {
    const result = convertJsonSafe(value, none, 1024);
    expect(JSON.stringify(result.value).length).toBeLessThanOrEqual(1024 + 32);
    expect(JSON.stringify(result.value).length).toBeGreaterThan(500);
    expect(result.complete).toBe(false);
  });

  it('ends a cut array with the truncation marker', () => {
    const { value } = convertJsonSafe(
      Array.from({ length: 5000 }, () => 'a'),
      none,
      1024,
    );
    expect((value as string[]).at(-1)).toBe(TRUNCATED);
  });

  it('keeps 10 000 characters whole under the default budget', () => {
    expect(toJsonSafe({ text: 'x'.repeat(10_000) }, none)).toEqual({ text: 'x'.repeat(10_000) });
  });

  it.each([
    ['arrays', (inner: unknown) => [inner]],
    ['objects', (inner: unknown) => ({ child: inner })],
    ['Map values', (inner: unknown) => new Map([['child', inner]])],
  ])('replaces what lies 32 levels down in nested %s, not before', (_shape, wrap) => {
    let value: unknown = 'bottom';
    for (let i = 0; i < 40; i++) value = wrap(value);
    const json = JSON.stringify(toJsonSafe(value, none));
    expect(json).toContain('[MaxDepth]');
    expect(json).not.toContain('bottom');
    let shallow: unknown = 'bottom';
    for (let i = 0; i < 31; i++) shallow = wrap(shallow);
    expect(JSON.stringify(toJsonSafe(shallow, none))).toContain('bottom');
  });

  it('tells the kind of an object by what it is, whatever prototype it reports: a proxied array stays an array, a Date without its prototype is data', () => {
    const plainProto = { getPrototypeOf: () => Object.prototype };
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, token: 't' });
    const undated = Object.setPrototypeOf(new Date(0), Object.prototype) as object;
    const unmapped = Object.setPrototypeOf(new Map([['a', 1]]), null) as object;
    expect(toJsonSafe({ list: new Proxy(['a', 'b'], plainProto), bare, undated, unmapped }, isRedacted)).toEqual({
      list: ['a', 'b'],
      bare: { a: 1, token: REDACTED },
      undated: {},
      unmapped: {},
    });
    expect(toJsonSafe(new Proxy(new Date(0), plainProto), none)).toEqual({});
    // A Map's methods refuse a proxy of it: unreadable, as any value whose reading throws.
    expect(toJsonSafe(new Proxy(new Map([['a', 1]]), { getPrototypeOf: () => Map.prototype }), none)).toBe('[Unreadable]');
  });

  it('writes undefined and null in an array as null', () => {
    expect(toJsonSafe([undefined, null, 1], none)).toEqual([null, null, 1]);
  });

  it('converts the same object twice side by side, and only an ancestor as circular', () => {
    const shared = { n: 1 };
    const looped: Record<string, unknown> = { shared };
    looped.self = looped;
    expect(toJsonSafe({ a: shared, b: shared, looped }, none)).toEqual({
      a: { n: 1 },
      b: { n: 1 },
      looped: { shared: { n: 1 }, self: '[Circular]' },
    });
  });

  it('redacts the second item of a [name, value] pair whose name is redacted, and nothing else', () => {
    expect(toJsonSafe(['token', 'abc'], isRedacted)).toEqual(['token', REDACTED]);
    expect(toJsonSafe(['token', 'abc', 'def'], isRedacted)).toEqual(['token', 'abc', 'def']);
    expect(toJsonSafe(['title', 'token'], isRedacted)).toEqual(['title', 'token']);
    expect(toJsonSafe([['token'], 'abc'], isRedacted)).toEqual([['token'], 'abc']);
    expect(toJsonSafe(['x', 'token', 'abc'], isRedacted)).toEqual(['x', 'token', 'abc']);
  });
});
