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

type Variant = 'baseline' | 'async' | 'asyncNoLinger' | 'sync';
const ENV: Record<Variant, Record<string, string>> = {
  baseline: { AUDIT_HTTP: 'false' },
  async: {},
  // The A/B of the async linger (batchDelayMs): the same app with batches sent at once.
  asyncNoLinger: { AUDIT_BATCH_DELAY_MS: '0' },
  sync: { AUDIT_MODE: 'sync' },
};
const AUDITED: readonly Variant[] = ['async', 'asyncNoLinger', 'sync'];

/** Rows of `audit_log` and the transactions that inserted them (distinct `xmin`): commits of the writer. */
async function auditCommits(pg: TestPostgres, db: string): Promise<{ rows: number; commits: number }> {
  const [row] = await pg.query<{ rows: string; commits: string }>(
    'SELECT count(*) AS rows, count(DISTINCT xmin::text) AS commits FROM audit_log',
    [],
    db,
  );
  return { rows: Number(row.rows), commits: Number(row.commits) };
}

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

/** A measured round's load result with the CPU the app and the PostgreSQL server spent meanwhile, and the audit commits it made. */
type Measured = LoadResult & { cpu: CpuSpent; commits: number };

/** The interquartile range of `values` (the spread of the middle half), by linear interpolation. */
export function iqr(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => {
    const i = (sorted.length - 1) * q;
    const lo = Math.floor(i);
    return sorted[lo] + (sorted[Math.min(lo + 1, sorted.length - 1)] - sorted[lo]) * (i - lo);
  };
  return sorted.length ? at(0.75) - at(0.25) : NaN;
}

/** CPU ms per request over all rounds of a variant: (app + PostgreSQL) / requests. */
function cpuPerRequest(runs: Measured[]): { total: number; app: number; postgres: number } {
  const requests = runs.reduce((n, r) => n + r.requests, 0);
  const app = runs.reduce((n, r) => n + r.cpu.appMs, 0) / requests;
  const postgres = runs.reduce((n, r) => n + r.cpu.postgresMs, 0) / requests;
  return { total: app + postgres, app, postgres };
}

/**
 * CPU ms per request of each variant over all rounds, and each audited mode's overhead: the median
 * of the per-round overheads, in %, with their IQR; and the module's own CPU per audited request
 * (the app's CPU per request over the baseline app's, round by round), in µs.
 */
function cpuFigures(runs: Record<Variant, Measured[]>): Figure[] {
  const base = cpuPerRequest(runs.baseline);
  const split = (c: { app: number; postgres: number }) => `app ${c.app.toFixed(3)} + PostgreSQL ${c.postgres.toFixed(3)}`;
  const overheads = (variant: Variant) =>
    runs[variant].map((r, i) => ((r.cpu.appMs + r.cpu.postgresMs) / r.requests / cpuPerRequest([runs.baseline[i]]).total - 1) * 100);
  const appMicros = (variant: Variant) =>
    runs[variant].map((r, i) => (r.cpu.appMs / r.requests - runs.baseline[i].cpu.appMs / runs.baseline[i].requests) * 1000);
  const spreadNote = (values: number[], unit: string, target?: number) => {
    const spread = iqr(values);
    const wide =
      target !== undefined && spread > target ? ' (the spread is larger than the target: the machine was too noisy to tell)' : '';
    return `IQR ${spread.toFixed(1)} ${unit} over ${values.length} rounds${wide}`;
  };
  const figures: Figure[] = [{ key: 'cpu.baselineMsPerRequest', value: base.total, unit: 'ms', note: `${split(base)}; AUDIT_HTTP=false` }];
  for (const variant of AUDITED) {
    if (runs[variant].length === 0) continue;
    const c = cpuPerRequest(runs[variant]);
    const key = { async: 'cpu.overheadPerRequest', asyncNoLinger: 'cpu.overheadPerRequestNoLinger', sync: 'cpu.syncOverheadPerRequest' }[
      variant as 'async' | 'asyncNoLinger' | 'sync'
    ];
    const values = overheads(variant);
    const target = variant === 'async' ? 10 : undefined;
    figures.push(
      { key: `cpu.${variant}MsPerRequest`, value: c.total, unit: 'ms', note: split(c) },
      {
        key,
        value: median(values),
        unit: '%',
        target: target === undefined ? undefined : { op: '<=', value: target },
        note: `${variant}: median of per-round overheads of CPU per request, ${spreadNote(values, '%', target)}; ${((c.total / base.total - 1) * 100).toFixed(1)} % over all rounds`,
      },
    );
  }
  if (runs.async.length) {
    const micros = appMicros('async');
    figures.push({
      key: 'cpu.moduleMicrosPerRequest',
      value: median(micros),
      unit: 'µs',
      target: { op: '<=', value: 60 },
      note: `async: the app's CPU per request over the baseline app's, median of rounds, ${spreadNote(micros, 'µs', 60)} (process CPU from /proc, not a profile)`,
    });
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
  const runs: Record<Variant, Measured[]> = { baseline: [], async: [], asyncNoLinger: [], sync: [] };
  let audited = 0;
  let syncNote: string | undefined;
  try {
    const started: Partial<Record<Variant, AppProcess>> = {};
    for (const variant of ['baseline', 'async', 'asyncNoLinger'] as const) {
      started[variant] = await startApp({ DATABASE_URL: pg.url(db), ...ENV[variant] });
      apps.push(started[variant]);
    }
    syncNote = await startSync(pg, db, apps);
    if (syncNote) console.log(`  sync     not available (${syncNote})`);
    else started.sync = apps[3];
    const variants = (['baseline', 'async', 'asyncNoLinger', 'sync'] as const).filter((v) => started[v]);
    for (const v of variants) audited += v === 'baseline' ? 0 : (await load((started[v] as AppProcess).port, times.warmupS)).requests;
    for (let round = 0; round < times.rounds; round++) {
      for (const v of variants) {
        const app = started[v] as AppProcess;
        const committed = await auditCommits(pg, db);
        const before = cpuSnapshot(app.pid, pg.postmasterPid());
        const result = await load(app.port, times.measureS);
        const cpu = cpuSpent(before, cpuSnapshot(app.pid, pg.postmasterPid()));
        // Lingering batches of the round's last requests commit within writeTimeoutMs.
        if (v !== 'baseline') await new Promise((r) => setTimeout(r, 300));
        runs[v].push({ ...result, cpu, commits: (await auditCommits(pg, db)).commits - committed.commits });
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
  const slack = (times.rounds + 1) * AUDITED.filter((v) => runs[v].length > 0).length * LOAD.connections + 1;
  if (rows < audited || rows > audited + slack) throw new Error(`${rows} audit rows for ${audited} audited requests (+${slack} at most)`);

  const commitsPerRequest = (variant: Variant) =>
    runs[variant].reduce((n, r) => n + r.commits, 0) / runs[variant].reduce((n, r) => n + r.requests, 0);
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
    {
      key: 'http.commitsPerRequest',
      value: commitsPerRequest('async'),
      unit: '',
      target: { op: '<=', value: 0.05 },
      note: `async, audit transactions (distinct xmin) per request over all rounds; ${commitsPerRequest('asyncNoLinger').toFixed(3)} with batchDelayMs 0`,
    },
    {
      key: 'http.asyncNoLingerRatio',
      value: paired(runs.asyncNoLinger, runs.baseline),
      unit: '×',
      note: `async with batchDelayMs 0 (the A/B of the linger): median of per-round ratios; median ${median(runs.asyncNoLinger.map((r) => r.rps)).toFixed(0)} req/s`,
    },
    ...(runs.sync.length
      ? [{ key: 'http.syncCommitsPerRequest', value: commitsPerRequest('sync'), unit: '', note: 'sync: no linger' }]
      : []),
    ...cpuFigures(runs),
  ];
}
