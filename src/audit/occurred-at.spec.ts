import fc from 'fast-check';
import { isoTime, OCCURRED_AT_RANGE, storableOccurredAt } from './occurred-at';

describe('occurredAt as stored', () => {
  it('gives the ISO text of each instant, whatever instants came before it', () => {
    const instant = fc.integer({ min: OCCURRED_AT_RANGE.min.getTime(), max: OCCURRED_AT_RANGE.max.getTime() });
    fc.assert(
      fc.property(fc.array(instant, { maxLength: 20 }), (times) => {
        for (const ms of [...times, ...times.toReversed()]) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
      }),
    );
  });

  it('gives the ISO text of instants close together, within a second and across its edges', () => {
    const base = fc.integer({ min: OCCURRED_AT_RANGE.min.getTime() + 5000, max: OCCURRED_AT_RANGE.max.getTime() - 5000 });
    const near = fc.oneof(fc.integer({ min: -2500, max: 2500 }), fc.double({ min: -2500, max: 2500, noNaN: true }));
    fc.assert(
      fc.property(base, fc.array(near, { maxLength: 30 }), (start, offsets) => {
        for (const ms of [start, ...offsets.map((d) => start + d)]) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
      }),
    );
    for (const ms of [-1001, -1000, -999, -1, 0, 1, 9, 10, 99, 100, 999, 1000, 1000.5, 1001])
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });

  it("keeps a caller's date in range, and stores the time of log() for one out of range", () => {
    const now = Date.UTC(2026, 10, 28, 19, 0, 0, 7);
    expect(storableOccurredAt(new Date('2020-02-29T12:00:00.000Z'), now)).toEqual({ iso: '2020-02-29T12:00:00.000Z' });
    expect(storableOccurredAt(undefined, now)).toEqual({ iso: '2026-11-28T19:00:00.007Z' });
    expect(storableOccurredAt(new Date(Date.UTC(10000, 0, 1)), now)).toEqual({
      iso: '2026-11-28T19:00:00.007Z',
      original: '+010000-01-01T00:00:00.000Z',
    });
  });
});
