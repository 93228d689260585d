import { sameValue, sameWithin, storedDecimal } from './diff-values';
import { isExcluded } from './entity-fields';

describe('diff values', () => {
  it('compares values as data: key order aside, dates by instant, buffers by bytes', () => {
    expect(sameValue({ a: 1, b: [2, { c: 3 }] }, { b: [2, { c: 3 }], a: 1 })).toBe(true);
    expect(sameValue(new Date(5), new Date(5))).toBe(true);
    expect(sameValue(Buffer.from('ab'), Buffer.from('ab'))).toBe(true);
    expect(sameValue({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(sameValue([1, 2], [2, 1])).toBe(false);
    expect(sameValue('10.50', 10.5)).toBe(false);
    expect(sameValue(null, 'unknown')).toBe(false);
    expect(sameValue(new Date(5), 5)).toBe(false);
  });

  it('compares class instances by their own enumerable keys, as JSON writes them', () => {
    class Settings {
      constructor(readonly theme: string) {}
    }
    expect(sameValue(new Settings('dark'), { theme: 'dark' })).toBe(true);
    expect(sameValue(new Settings('dark'), new Settings('light'))).toBe(false);
    expect(sameValue(new Error('a'), new Error('a'))).toBe(false);
  });

  it('excludes a path by itself, by a path above it, or by its column name', () => {
    const exclude = new Set(['profile', 'updated_at', 'settings.theme']);
    expect(isExcluded(exclude, 'profile.city')).toBe(true);
    expect(isExcluded(exclude, 'updatedAt', ['updated_at'])).toBe(true);
    expect(isExcluded(exclude, 'settings')).toBe(false);
    expect(isExcluded(exclude, 'profiles')).toBe(false);
  });

  it('compares large values within a bound of pairs, the excluded keys aside, never calling undecided ones the same', () => {
    const pages = (count: number) => Array.from({ length: count }, () => ({}));
    expect(sameWithin({ pages: pages(50), role: 'viewer' }, { pages: pages(50), role: 'owner' }, [], 1_000)).toBe(false);
    expect(sameWithin({ pages: pages(50), role: 'viewer' }, { pages: pages(50), role: 'viewer' }, [], 1_000)).toBe(true);
    // Past the bound: not known, so never taken for unchanged.
    expect(sameWithin({ pages: pages(50), role: 'viewer' }, { pages: pages(50), role: 'viewer' }, [], 10)).toBeUndefined();
    expect(
      sameWithin(
        { theme: 'a', list: [{ hint: 1, kind: 'x' }] },
        { theme: 'b', list: [{ hint: 2, kind: 'x' }] },
        [['theme'], ['list', 'hint']],
        100,
      ),
    ).toBe(true);
    expect(
      sameWithin(
        { theme: 'a', list: [{ hint: 1, kind: 'x' }] },
        { theme: 'a', list: [{ hint: 1, kind: 'y' }] },
        [['theme'], ['list', 'hint']],
        100,
      ),
    ).toBe(false);
    // Read otherwise than JSON writes them: not decided here.
    expect(sameWithin({ m: new Map([['a', 1]]) }, { m: new Map([['a', 2]]) }, [], 100)).toBeUndefined();
    expect(sameWithin({ d: new Date(5) }, { d: new Date(5) }, [], 100)).toBe(true);
    // A graph that shares nodes, 2^40 paths through 40 objects: bounded work.
    let shared: unknown = {};
    for (let i = 0; i < 40; i++) shared = [shared, shared];
    let other: unknown = {};
    for (let i = 0; i < 40; i++) other = [other, other];
    expect(sameWithin(shared, other, [], 10_000)).toBeUndefined();
  });

  it('reads a decimal as a numeric or bigint column stores it', () => {
    expect(storedDecimal('12.50', 2)).toBe(storedDecimal(12.5, 2));
    expect(storedDecimal('7', undefined)).toBe(storedDecimal(7, undefined));
    expect(storedDecimal(9007199254740993n, undefined)).toBe('9007199254740993');
    expect([storedDecimal(40.004, 2), storedDecimal(40.005, 2), storedDecimal('-40.005', 2), storedDecimal('9.995', 2)]).toEqual([
      '40',
      '40.01',
      '-40.01',
      '10',
    ]);
    expect([
      storedDecimal('-0.001', 2),
      storedDecimal('.5', 0),
      storedDecimal(1e21, undefined),
      storedDecimal('1.5E-3', undefined),
    ]).toEqual(['0', '1', '1000000000000000000000', '0.0015']);
    expect([storedDecimal('NaN', 2), storedDecimal('-infinity', 2), storedDecimal(Number.NaN, 2)]).toEqual(['NaN', '-Infinity', 'NaN']);
    expect([storedDecimal('12.5 EUR', 2), storedDecimal({}, 2), storedDecimal('', 2), storedDecimal('1e999999999', 2)]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(storedDecimal('12.51', 2)).not.toBe(storedDecimal(12.5, 2));
    // A negative scale rounds before the point, half away from zero, as numeric(5,-2) stores it.
    expect([
      storedDecimal(12345, -2),
      storedDecimal('12250', -2),
      storedDecimal(49, -2),
      storedDecimal(50, -2),
      storedDecimal('-950.5', -3),
    ]).toEqual(['12300', '12300', '0', '100', '-1000']);
  });
});
