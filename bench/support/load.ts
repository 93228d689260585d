import autocannon from 'autocannon';

/** What one autocannon run measured. */
export interface LoadResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  errors: number;
}

/** The load every HTTP scenario applies: fixed connections against `POST /ndas`. */
export const LOAD = { connections: 10, path: '/ndas' };

/**
 * Runs autocannon against `POST /ndas` of the app on `port` for `seconds`. Rejects when any
 * request failed or answered other than 2xx: a figure from failed requests would flatter.
 *
 * @example
 * const { rps, p99Ms } = await load(port, 10);
 */
export function load(port: number, seconds: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `http://127.0.0.1:${port}${LOAD.path}`,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-user-id': 'bench-user', 'user-agent': 'autocannon-bench' },
        body: JSON.stringify({
          title: 'Supplier NDA for the evaluation of the 2027 roadmap',
          counterparty: 'Acme Industrial Holdings GmbH',
        }),
        connections: LOAD.connections,
        duration: seconds,
        timeout: 10,
      },
      (error, result) => {
        if (error) return reject(error);
        const failed = result.errors + result.timeouts + result.non2xx;
        if (failed > 0 || result['2xx'] === 0) {
          return reject(
            new Error(`load on port ${port}: ${failed} failed requests (${result.non2xx} non-2xx, ${result.timeouts} timeouts)`),
          );
        }
        resolve({
          rps: result['2xx'] / result.duration,
          p50Ms: result.latency.p50,
          p99Ms: result.latency.p99,
          requests: result['2xx'],
          errors: failed,
        });
      },
    );
  });
}

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
