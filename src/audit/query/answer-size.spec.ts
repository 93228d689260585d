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
    expect(fitsIn({ items: Array.from({ length: 5000 }, () => 0) }, 64 * 1024)).toBe(false);
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
