import { sameValue } from './diff-values';
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
});
