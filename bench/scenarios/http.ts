import { AppRefusedError, type AppProcess, postNda, startApp } from '../support/app-process';
import { cpuSnapshot, type CpuSpent, cpuSpent } from '../support/cpu';
import { load, LOAD, type LoadResult, median } from '../support/load';
import { countRows, type TestPostgres } from '../support/postgres';
import { type Figure } from '../support/report';

/** Durations of the HTTP scenario: one warm-up per app, then `rounds` alternations of `measureS`. */
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

/**
 * Sync mode is in effect only if a request waits for its audit write: with `audit_log` locked for
 * 600 ms, a POST must take at least that long. An app that ignores `AUDIT_MODE` answers at once.
 */
async function waitsForAuditWrite(pg: TestPostgres, db: string, app: AppProcess): Promise<string | undefined> {
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
}

async function startSync(pg: TestPostgres, db: string, apps: AppProcess[]): Promise<string | undefined> {
  try {
    const app = await startApp({ DATABASE_URL: pg.url(db), ...ENV.sync });
    apps.push(app);
    return await waitsForAuditWrite(pg, db, app);
  } catch (error) {
    if (!(error instanceof AppRefusedError)) throw error;
    return `refused at start-up: ${error.output.split('\n').pop()}`;
  }
}

const spread = (runs: LoadResult[]) => runs.map((r) => r.rps.toFixed(0)).join(', ');
const paired = (runs: LoadResult[], baseline: LoadResult[]) => median(runs.map((r, i) => r.rps / baseline[i].rps));

/** A measured round's load result with the CPU the app and the PostgreSQL server spent meanwhile. */
type Measured = LoadResult & { cpu: CpuSpent };

/** CPU ms per request over all rounds of a variant: (app + PostgreSQL) / requests. */
function cpuPerRequest(runs: Measured[]): { total: number; app: number; postgres: number } {
  const requests = runs.reduce((n, r) => n + r.requests, 0);
  const app = runs.reduce((n, r) => n + r.cpu.appMs, 0) / requests;
  const postgres = runs.reduce((n, r) => n + r.cpu.postgresMs, 0) / requests;
  return { total: app + postgres, app, postgres };
}

/** CPU ms per request of each variant over all rounds, and each audited mode's overhead: the median of the per-round overheads, in %. */
function cpuFigures(runs: Record<Variant, Measured[]>): Figure[] {
  const base = cpuPerRequest(runs.baseline);
  const split = (c: { app: number; postgres: number }) => `app ${c.app.toFixed(3)} + PostgreSQL ${c.postgres.toFixed(3)}`;
  const perRound = (variant: Variant) =>
    median(runs[variant].map((r, i) => (r.cpu.appMs + r.cpu.postgresMs) / r.requests / cpuPerRequest([runs.baseline[i]]).total - 1)) * 100;
  const figures: Figure[] = [{ key: 'cpu.baselineMsPerRequest', value: base.total, unit: 'ms', note: `${split(base)}; AUDIT_HTTP=false` }];
  for (const variant of ['async', 'sync'] as const) {
    if (runs[variant].length === 0) continue;
    const c = cpuPerRequest(runs[variant]);
    figures.push(
      { key: `cpu.${variant}MsPerRequest`, value: c.total, unit: 'ms', note: split(c) },
      {
        key: variant === 'async' ? 'cpu.overheadPerRequest' : 'cpu.syncOverheadPerRequest',
        value: perRound(variant),
        unit: '%',
        target: variant === 'async' ? { op: '<=', value: 10 } : undefined,
        note: `${variant} mode: median of per-round overheads of CPU per request; ${((c.total / base.total - 1) * 100).toFixed(1)} % over all rounds`,
      },
    );
  }
  return figures;
}

/**
 * Scenario 2: requests/s of `POST /ndas` on the example app (child processes, all up at once, idle
 * unless loaded) without the audit interceptor, in async mode and in sync mode, against database
 * `db`. The load alternates between them `rounds` times, so that the machine's noise falls on all
 * alike; the median of the per-round ratios is each mode's figure. During each measured run the
 * CPU time of the loaded app and of the whole PostgreSQL server (postmaster and its children) is
 * read from `/proc`: CPU per request, audited against not, is steadier than requests/s on a
 * shared machine. Afterwards every audited request must have its row.
 *
 * @example
 * const figures = await http(pg, 'http', { warmupS: 2, measureS: 4, rounds: 5 }, details);
 */
export async function http(pg: TestPostgres, db: string, times: HttpTimes, details: Record<string, unknown>): Promise<Figure[]> {
  await pg.createDatabase(db);
  const apps: AppProcess[] = [];
  const runs: Record<Variant, Measured[]> = { baseline: [], async: [], sync: [] };
  let audited = 0;
  let syncNote: string | undefined;
  try {
    const started: Partial<Record<Variant, AppProcess>> = {};
    for (const variant of ['baseline', 'async'] as const) {
      started[variant] = await startApp({ DATABASE_URL: pg.url(db), ...ENV[variant] });
      apps.push(started[variant]);
    }
    syncNote = await startSync(pg, db, apps);
    if (syncNote) console.log(`  sync     not available (${syncNote})`);
    else started.sync = apps[2];
    const variants = (['baseline', 'async', 'sync'] as const).filter((v) => started[v]);
    for (const v of variants) audited += v === 'baseline' ? 0 : (await load((started[v] as AppProcess).port, times.warmupS)).requests;
    for (let round = 0; round < times.rounds; round++) {
      for (const v of variants) {
        const app = started[v] as AppProcess;
        const before = cpuSnapshot(app.pid, pg.postmasterPid());
        const result = await load(app.port, times.measureS);
        runs[v].push({ ...result, cpu: cpuSpent(before, cpuSnapshot(app.pid, pg.postmasterPid())) });
        if (v !== 'baseline') audited += result.requests;
      }
      console.log(
        `  round ${round + 1}: ${variants.map((v) => `${v} ${runs[v][round].rps.toFixed(0)} req/s (p99 ${runs[v][round].p99Ms} ms, ${cpuPerRequest([runs[v][round]]).total.toFixed(2)} CPU ms/req)`).join(', ')}`,
      );
    }
  } finally {
    await Promise.all(apps.map((app) => app.stop()));
  }
  const rows = await countRows(pg, db);
  // autocannon does not count responses in flight when it stops (the app audits them), nor the sync probe.
  const slack = (times.rounds + 1) * 2 * LOAD.connections + 1;
  if (rows < audited || rows > audited + slack) throw new Error(`${rows} audit rows for ${audited} audited requests (+${slack} at most)`);

  const baseline = median(runs.baseline.map((r) => r.rps));
  const asyncRps = median(runs.async.map((r) => r.rps));
  const syncRps = runs.sync.length ? median(runs.sync.map((r) => r.rps)) : null;
  details.http = { ...times, connections: LOAD.connections, runs, auditRows: rows, auditedRequests: audited, syncNote: syncNote ?? null };
  return [
    { key: 'http.baselineRps', value: baseline, unit: 'req/s', note: `median of ${spread(runs.baseline)}; AUDIT_HTTP=false` },
    { key: 'http.asyncRps', value: asyncRps, unit: 'req/s', note: `median of ${spread(runs.async)}` },
    { key: 'http.syncRps', value: syncRps, unit: 'req/s', note: syncNote ? 'not available' : `median of ${spread(runs.sync)}` },
    {
      key: 'http.asyncRatio',
      value: paired(runs.async, runs.baseline),
      unit: '×',
      target: { op: '>=', value: 0.95 },
      note: `median of per-round ratios; ${(asyncRps / baseline).toFixed(2)} as the ratio of the median rates`,
    },
    {
      key: 'http.syncRatio',
      value: syncRps === null ? null : paired(runs.sync, runs.baseline),
      unit: '×',
      target: { op: '>=', value: 0.85 },
      note:
        syncRps === null
          ? 'not available'
          : `median of per-round ratios; ${(syncRps / baseline).toFixed(2)} as the ratio of the median rates`,
    },
    ...cpuFigures(runs),
  ];
}
