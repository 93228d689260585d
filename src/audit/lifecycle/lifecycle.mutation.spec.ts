import { decodeRetained, encodeRetained, mergeRetained } from './checkpoint';
import { monthOf, monthStart } from './month-partitions';
import { resolveRetentionOptions } from './retention-options';

describe('a checkpoint’s retained rows', () => {
  it('writes the seals in seq order, as a number, whatever order they were added in', () => {
    const bits = (n: number) => Buffer.from([n]);
    const added = encodeRetained(
      new Map([
        [10, bits(1)],
        [2, bits(2)],
        [9, bits(3)],
      ]),
    );
    const sorted = encodeRetained(
      new Map([
        [2, bits(2)],
        [9, bits(3)],
        [10, bits(1)],
      ]),
    );
    expect(added.equals(sorted)).toBe(true);
    expect([...decodeRetained(added).keys()]).toEqual([2, 9, 10]);
  });

  it('reads no entry a manifest cuts short', () => {
    const whole = encodeRetained(
      new Map([
        [3, Buffer.from([0xa0])],
        [4, Buffer.from([1, 2, 3, 4])],
      ]),
    );
    const cut = decodeRetained(whole.subarray(0, whole.length - 2));
    expect([...cut.keys()]).toEqual([3]);
    expect(cut.get(3)).toEqual(Buffer.from([0xa0]));
  });

  it('merges the bits of one seal from several months, the longer bitmap whole', () => {
    const into = new Map([[3, Buffer.from([0b1000_0000])]]);
    mergeRetained(into, new Map([[3, Buffer.from([0b0100_0000, 0b0000_0001])]]));
    expect(into.get(3)).toEqual(Buffer.from([0b1100_0000, 0b0000_0001]));
  });
});

describe('month arithmetic (UTC)', () => {
  it('names the month of an instant', () => {
    expect(monthOf(Date.UTC(2026, 0, 1))).toBe('2026-01');
    expect(monthOf(Date.UTC(2026, 11, 31, 23, 59, 59, 999))).toBe('2026-12');
  });

  it('gives the first instant of a month, months before or after', () => {
    expect(monthStart('2026-03')).toBe(Date.UTC(2026, 2, 1));
    expect(monthStart('2026-12', 1)).toBe(Date.UTC(2027, 0, 1));
    expect(monthStart('2026-01', -1)).toBe(Date.UTC(2025, 11, 1));
    expect(monthStart('1999-10', 3)).toBe(Date.UTC(2000, 0, 1));
  });
});

describe('the retention option: what it takes and the words of its refusals', () => {
  it('is off when null', () => {
    expect(resolveRetentionOptions(null)).toBeNull();
  });

  it('takes each bound itself', () => {
    expect(resolveRetentionOptions({ months: 1200, intervalMs: 2_678_400_000 })).toEqual({
      months: 1200,
      legalHold: [],
      intervalMs: 2_678_400_000,
      legacy: false,
    });
  });

  it.each([
    ['a list', [], 'retention', "an object such as { months: 72, legalHold: ['2026-01'] }"],
    ['no months', {}, 'retention.months', 'an integer from 1 to 1200 (whole months kept before the current one)'],
    ['an interval below a minute', { months: 1, intervalMs: 59_999 }, 'retention.intervalMs', 'an integer from 60000 to 2678400000'],
    ['an interval above 31 days', { months: 1, intervalMs: 2_678_400_001 }, 'retention.intervalMs', 'an integer from 60000 to 2678400000'],
    ['an interval that is a fraction', { months: 1, intervalMs: 60_000.5 }, 'retention.intervalMs', 'an integer from 60000 to 2678400000'],
    ['an interval as text', { months: 1, intervalMs: '60000' }, 'retention.intervalMs', 'an integer from 60000 to 2678400000'],
    ['a hold that is not a list', { months: 1, legalHold: '2026-01' }, 'retention.legalHold', "an array of months such as ['2026-01']"],
    ['a month in a list', { months: 1, legalHold: [['2026-01']] }, 'retention.legalHold[0]', "a month written YYYY-MM, such as '2026-01'"],
    ['text before a month', { months: 1, legalHold: ['x2026-01'] }, 'retention.legalHold[0]', "a month written YYYY-MM, such as '2026-01'"],
    [
      'text after a month',
      { months: 1, legalHold: ['2026-01', '2026-012'] },
      'retention.legalHold[1]',
      "a month written YYYY-MM, such as '2026-01'",
    ],
  ])('refuses %s', (_what, input, key, expected) => {
    expect(() => resolveRetentionOptions(input)).toThrow(`AuditModule option "${key}" must be ${expected}, got `);
  });
});
