import { volumeBuckets, volumeQuery } from './audit-volume';

describe('the volume per hour', () => {
  const now = Date.parse('2026-12-04T17:40:00Z');

  it('gives 24 hours oldest first, the current one last, empty hours as 0', () => {
    const buckets = volumeBuckets(
      [
        { hour_ms: String(Date.parse('2026-12-04T17:00:00Z')), n: '7' },
        { hour_ms: Date.parse('2026-12-03T18:00:00Z'), n: 2 },
      ],
      now,
    );
    expect(buckets).toHaveLength(24);
    expect(buckets[0]).toEqual({ hour: '2026-12-03T18:00:00.000Z', rows: 2 });
    expect(buckets[23]).toEqual({ hour: '2026-12-04T17:00:00.000Z', rows: 7 });
    expect(buckets.slice(1, 23).every((b) => b.rows === 0)).toBe(true);
  });

  it('reads from the first of those hours on', () => {
    expect(volumeQuery('"audit_log"', now)).toContain(`occurred_at >= '2026-12-03T18:00:00.000Z'::timestamptz`);
  });
});
