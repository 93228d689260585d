import { type TestPostgres } from '../../test/support/postgres';
import { AppRefusedError, type AppProcess, postNda, startApp } from '../support/app-process';
import { load, type LoadResult, median } from '../support/load';
import { type Figure } from '../support/report';

/** Durations of the HTTP scenario, in seconds. */
export interface HttpTimes {
  warmupS: number;
  measureS: number;
  rounds: number;
}

type Variant = 'baseline' | 'async' | 'sync';
const ENV: Record<Variant, Record<string, string>> = {
  baseline: { AUDIT_HTTP: 'false' },
  async: {},
  sync: { AUDIT_MODE: 'sync' },
};

async function measure(url: string, variant: Variant, times: HttpTimes, check?: (app: AppProcess) => Promise<string | undefined>) {
  const app = await startApp({ DATABASE_URL: url, ...ENV[variant] });
  try {
    const refusal = await check?.(app);
    if (refusal) return refusal;
    await load(app.port, times.warmupS);
    return await load(app.port, times.measureS);
  } finally {
    await app.stop();
  }
}

/**
 * Sync mode is in effect only if a request waits for its audit write: with `audit_log` locked for
 * 600 ms, a POST must take at least that long. An app that ignores `AUDIT_MODE` answers at once.
 */
function waitsForAuditWrite(pg: TestPostgres, db: string) {
  return async (app: AppProcess): Promise<string | undefined> => {
    const session = await pg.connect(db);
    try {
      await session.query('BEGIN');
      await session.query('LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
      const release = new Promise((r) => setTimeout(r, 600)).then(() => session.query('COMMIT'));
      const latency = await postNda(app.port);
      await release;
      return latency < 500 ? `AUDIT_MODE=sync ignored: a POST took ${latency.toFixed(0)} ms with audit_log locked for 600 ms` : undefined;
    } finally {
      await session.end();
    }
  };
}

/**
 * Scenario 2: requests/s of `POST /ndas` on the example app (child process) without the audit
 * interceptor, in async mode and in sync mode, all against database `db`. Baseline and async run
 * alternately `rounds` times each; the medians are compared.
 *
 * @example
 * const figures = await http(pg, 'http', { warmupS: 2, measureS: 10, rounds: 2 }, details);
 */
export async function http(pg: TestPostgres, db: string, times: HttpTimes, details: Record<string, unknown>): Promise<Figure[]> {
  await pg.createDatabase(db);
  const url = pg.url(db);
  const runs: Record<Variant, LoadResult[]> = { baseline: [], async: [], sync: [] };
  for (let round = 0; round < times.rounds; round++) {
    for (const variant of ['baseline', 'async'] as const) {
      const result = (await measure(url, variant, times)) as LoadResult;
      runs[variant].push(result);
      console.log(`  ${variant.padEnd(8)} ${result.rps.toFixed(0)} req/s, p99 ${result.p99Ms} ms`);
    }
  }
  let syncNote: string | undefined;
  try {
    const result = await measure(url, 'sync', times, waitsForAuditWrite(pg, db));
    if (typeof result === 'string') syncNote = result;
    else {
      runs.sync.push(result);
      console.log(`  sync     ${result.rps.toFixed(0)} req/s, p99 ${result.p99Ms} ms`);
    }
  } catch (error) {
    if (!(error instanceof AppRefusedError)) throw error;
    syncNote = `refused at start-up: ${error.output.split('\n').pop()}`;
  }
  if (syncNote) console.log(`  sync     not available (${syncNote})`);

  const audited = await pg.query<{ n: string }>('SELECT count(*) AS n FROM audit_log', [], db);
  const asyncRequests = runs.async.reduce((n, r) => n + r.requests, 0);
  if (Number(audited[0].n) < asyncRequests) throw new Error(`only ${audited[0].n} audit rows for ${asyncRequests} audited requests`);
  const baseline = median(runs.baseline.map((r) => r.rps));
  const asyncRps = median(runs.async.map((r) => r.rps));
  const syncRps = runs.sync.length ? runs.sync[0].rps : null;
  details.http = { ...times, connections: 10, runs, auditRows: Number(audited[0].n), syncNote: syncNote ?? null };
  return [
    { key: 'http.baselineRps', value: baseline, unit: 'req/s', note: `median of ${times.rounds}, AUDIT_HTTP=false` },
    { key: 'http.asyncRps', value: asyncRps, unit: 'req/s', note: `median of ${times.rounds}` },
    { key: 'http.syncRps', value: syncRps, unit: 'req/s', note: syncNote ? 'not available' : undefined },
    { key: 'http.asyncRatio', value: asyncRps / baseline, unit: '×', target: { op: '>=', value: 0.9 } },
    { key: 'http.syncRatio', value: syncRps === null ? null : syncRps / baseline, unit: '×', target: { op: '>=', value: 0.5 } },
  ];
}
