/**
 * One hour of the trail: rows whose `occurred_at` falls in it.
 *
 * @example
 * const bucket: VolumeBucket = { hour: '2026-12-04T17:00:00.000Z', rows: 42 };
 */
export interface VolumeBucket {
  /** The hour's start, ISO 8601. */
  hour: string;
  rows: number;
}

const HOUR_MS = 3_600_000;

/**
 * Rows per hour of the 24 hours up to `now` (the current hour included), one query on the
 * `occurred_at` index, for the viewer's volume chart.
 *
 * @example
 * await reader.read(volumeQuery(reader.table(), Date.now()));
 */
export function volumeQuery(table: string, now: number): string {
  const start = new Date(firstHour(now)).toISOString();
  // Bounded above too: a row dated in the future (or at infinity) is not in the chart and cannot fail its arithmetic.
  const end = new Date(firstHour(now) + 24 * HOUR_MS).toISOString();
  return (
    `SELECT floor(extract(epoch FROM occurred_at) / 3600)::bigint * 3600000 AS hour_ms, count(*)::bigint AS n ` +
    `FROM ${table} WHERE occurred_at >= '${start}'::timestamptz AND occurred_at < '${end}'::timestamptz GROUP BY 1 ORDER BY 1`
  );
}

/**
 * The 24 buckets, empty hours as 0, oldest first.
 *
 * @example
 * volumeBuckets([{ hour_ms: '1764842400000', n: '3' }], Date.now());
 */
export function volumeBuckets(rows: { hour_ms: string | number; n: string | number }[], now: number): VolumeBucket[] {
  const counts = new Map(rows.map((row) => [Number(row.hour_ms), Number(row.n)]));
  const first = firstHour(now);
  return Array.from({ length: 24 }, (_, i) => {
    const hour = first + i * HOUR_MS;
    return { hour: new Date(hour).toISOString(), rows: counts.get(hour) ?? 0 };
  });
}

function firstHour(now: number): number {
  return Math.floor(now / HOUR_MS) * HOUR_MS - 23 * HOUR_MS;
}
