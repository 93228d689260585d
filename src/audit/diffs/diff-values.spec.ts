import { sameValue, shownValue, withoutExcluded } from './diff-values';
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

  it('takes excluded paths out of a value at any depth, through arrays, without touching the value', () => {
    const settings = { theme: 'dark', layout: { grid: true, side: 'left' }, list: [{ secretHint: 1, kind: 'a' }] };
    const exclude = new Set(['settings.theme', 'settings.layout.grid', 'settings.list.secretHint', 'other.theme']);
    expect(withoutExcluded(settings, 'settings', exclude)).toEqual({ layout: { side: 'left' }, list: [{ kind: 'a' }] });
    expect(settings.theme).toBe('dark');
    expect(withoutExcluded(settings, 'other', new Set(['settings.theme']))).toBe(settings);
    const cycle: unknown[] = [];
    cycle.push(cycle);
    expect(() => withoutExcluded(cycle, 'settings', exclude)).not.toThrow();
  });

  it('excludes a path by itself, by a path above it, or by its column name', () => {
    const exclude = new Set(['profile', 'updated_at', 'settings.theme']);
    expect(isExcluded(exclude, 'profile.city')).toBe(true);
    expect(isExcluded(exclude, 'updatedAt', ['updated_at'])).toBe(true);
    expect(isExcluded(exclude, 'settings')).toBe(false);
    expect(isExcluded(exclude, 'profiles')).toBe(false);
  });

  it('shows the value of an SQL expression as unknown', () => {
    expect(shownValue(() => 'NOW()')).toBe('unknown');
    expect(shownValue(null)).toBeNull();
  });
});
