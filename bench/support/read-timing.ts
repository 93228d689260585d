import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Times `count` calls of `read`, one at a time, after a warm-up of up to 200. */
export async function latencies(read: () => Promise<unknown>, count: number): Promise<number[]> {
  for (let i = 0; i < Math.min(200, count); i += 1) await read();
  const ms: number[] = [];
  for (let i = 0; i < count; i += 1) {
    const started = performance.now();
    await read();
    ms.push(performance.now() - started);
  }
  return ms;
}

/**
 * Consumes an export into a sink that counts bytes and lines, sampling the process's RSS every
 * 50 ms: rows per second, and RSS growth from the first 10 % of the export to its end.
 */
export async function exported(open: () => Promise<NodeJS.ReadableStream>, headerLines: number) {
  const rss: number[] = [];
  const sample = setInterval(() => rss.push(process.memoryUsage.rss() / 1024 ** 2), 50);
  let bytes = 0;
  let lines = 0;
  const started = performance.now();
  try {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines += 1;
        done();
      },
    });
    await pipeline(await open(), sink);
  } finally {
    clearInterval(sample);
  }
  const seconds = (performance.now() - started) / 1000;
  const steady = rss.slice(Math.floor(rss.length / 10));
  const rows = lines - headerLines;
  return {
    rows,
    seconds: Number(seconds.toFixed(1)),
    rowsPerSec: Math.round(rows / seconds),
    mb: Math.round(bytes / 1024 ** 2),
    rssStartMb: Math.round(steady[0] ?? 0),
    rssMaxMb: Math.round(Math.max(...rss)),
    rssGrowthMb: Math.round((steady[steady.length - 1] ?? 0) - (steady[0] ?? 0)),
  };
}

/** p50, p90, p99 and max of `ms`. */
export function summary(ms: number[]) {
  return { p50: percentile(ms, 50), p90: percentile(ms, 90), p99: percentile(ms, 99), max: Math.max(...ms) };
}

/** The `p`th percentile (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** An integer from 0 to `n - 1`. */
export function randomInt(n: number): number {
  return Math.floor(Math.random() * n);
}
