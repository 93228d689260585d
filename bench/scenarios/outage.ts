import { startApp, waitHealthy } from '../support/app-process';
import { load, type LoadResult, median } from '../support/load';
import { type TestPostgres } from '../support/postgres';
import { type Figure } from '../support/report';

/**
 * Scenario 3: p99 latency of `POST /ndas` (async mode, child app) with the audit database, a
 * PostgreSQL of its own, healthy and then killed, `rounds` times: the audit server is restarted
 * after each down phase and the next healthy phase waits for `/health` to say 200 again. The NDA
 * database stays up. Every request of a down phase must have its `audit.buffered` line.
 *
 * @example
 * const figures = await outage(main, audit, { warmupS: 2, measureS: 5, rounds: 3 }, details);
 */
export async function outage(
  main: TestPostgres,
  audit: TestPostgres,
  times: { warmupS: number; measureS: number; rounds: number },
  details: Record<string, unknown>,
): Promise<Figure[]> {
  await main.createDatabase('outage');
  await audit.createDatabase('outage_audit');
  const app = await startApp({ DATABASE_URL: main.url('outage'), AUDIT_DATABASE_URL: audit.url('outage_audit') });
  const healthy: LoadResult[] = [];
  const down: LoadResult[] = [];
  let alive = true;
  try {
    await load(app.port, times.warmupS);
    for (let round = 0; round < times.rounds; round++) {
      await waitHealthy(app.port);
      healthy.push(await load(app.port, times.measureS));
      await audit.kill();
      alive = false;
      await load(app.port, 1);
      const before = app.events.of('audit.buffered');
      down.push(await load(app.port, times.measureS));
      const buffered = app.events.of('audit.buffered') - before;
      if (buffered < down[round].requests)
        throw new Error(`${buffered} audit.buffered lines for ${down[round].requests} requests while down`);
      await audit.restart();
      alive = true;
      const [h, d] = [healthy[round], down[round]];
      console.log(
        `  round ${round + 1}: healthy ${h.rps.toFixed(0)} req/s p99 ${h.p99Ms} ms; down ${d.rps.toFixed(0)} req/s p99 ${d.p99Ms} ms`,
      );
    }
    details.outage = { ...times, healthy, down, events: Object.fromEntries(app.events.counts) };
  } finally {
    await app.stop();
    if (!alive) await audit.restart();
  }
  const healthyP99 = median(healthy.map((r) => r.p99Ms));
  const downP99 = median(down.map((r) => r.p99Ms));
  const list = (runs: LoadResult[]) => runs.map((r) => r.p99Ms).join(', ');
  return [
    { key: 'outage.healthyP99Ms', value: healthyP99, unit: 'ms', note: `median of ${list(healthy)}` },
    { key: 'outage.downP99Ms', value: downP99, unit: 'ms', note: `median of ${list(down)}; audit DB killed` },
    { key: 'outage.ratio', value: downP99 / healthyP99, unit: '×', target: { op: '<=', value: 1.5 } },
  ];
}
