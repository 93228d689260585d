import { fitsIn } from './answer-size';

describe('fitsIn', () => {
  it('measures a value as JSON writes it, in UTF-8 with its escapes', () => {
    const text = 'x'.repeat(1000);
    expect(JSON.stringify({ text }).length).toBe(1011);
    expect(fitsIn({ text }, 1100)).toBe(true);
    expect(fitsIn({ text }, 1000)).toBe(false);
    // Three bytes a character in UTF-8, six for a control character escaped.
    expect(fitsIn({ text: '€'.repeat(400) }, 1100)).toBe(false);
    expect(fitsIn({ text: '\u0001'.repeat(200) }, 1100)).toBe(false);
    expect(fitsIn({ text: 'x'.repeat(200) }, 1100)).toBe(true);
  });

  it('counts every row of a page, and the values that are not text', () => {
    const row = { id: 'a'.repeat(36), occurredAt: new Date(0), changes: { n: 1, note: 'y'.repeat(100) } };
    expect(fitsIn({ items: Array.from({ length: 10 }, () => row), nextCursor: null }, 64 * 1024)).toBe(true);
    expect(fitsIn({ items: Array.from({ length: 500 }, () => row), nextCursor: null }, 64 * 1024)).toBe(false);
    expect(fitsIn({ items: Array.from({ length: 40_000 }, () => 0) }, 64 * 1024)).toBe(false);
    expect(fitsIn({ items: Array.from({ length: 30_000 }, () => 0) }, 64 * 1024)).toBe(true);
  });

  it('counts what JSON writes, never less, and a byte a member more at most (with the keys JSON leaves out)', () => {
    /** The count fitsIn() makes of `value`: the least limit it fits in. */
    const counted = (value: unknown): number => {
      let [low, high] = [0, 1 << 20];
      while (low < high) {
        const middle = Math.floor((low + high) / 2);
        if (fitsIn(value, middle)) high = middle;
        else low = middle + 1;
      }
      return low;
    };
    const cases: [unknown, number][] = [
      // [value, bytes counted beyond what JSON writes: a comma in each array or object with members, and a left-out member]
      [null, 0],
      [-1.5e-7, 0],
      [Number.NaN, 0],
      [false, 0],
      ['déjà "vu"\n', 0],
      [[], 0],
      [{}, 0],
      [[null, 1, [2, [3]]], 3],
      [{ a: undefined, b: 2 }, 2 + 4 + 4],
      [{ '': 1, 'clé "x"': { nested: [true, false, null] }, when: new Date(0) }, 3],
    ];
    for (const [value, over] of cases) {
      expect({ value, over: counted(value) - Buffer.byteLength(JSON.stringify(value)) }).toEqual({ value, over });
    }
    const page = { items: Array.from({ length: 50 }, (_, n) => ({ id: `row-${n}`, n, ok: n % 2 === 0, note: null, tags: ['a', 'b'] })) };
    const written = Buffer.byteLength(JSON.stringify(page));
    expect(counted(page)).toBeGreaterThanOrEqual(written);
    expect(counted(page) / written).toBeLessThan(1.1);
  });

  it('stops once the count passes the limit', () => {
    let read = 0;
    const items = Array.from({ length: 10_000 }, () => ({
      toJSON: () => {
        read += 1;
        return 'z'.repeat(1000);
      },
    }));
    expect(fitsIn({ items }, 64 * 1024)).toBe(false);
    expect(read).toBeLessThan(100);
  });

  it('does not fit what JSON cannot write', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(fitsIn(cycle, 64 * 1024)).toBe(false);
    expect(fitsIn({ n: 1n }, 64 * 1024)).toBe(false);
  });
});
