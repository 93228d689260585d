import 'reflect-metadata';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { killAllApps } from './support/app-process';
import { REPO_ROOT, startPostgres, type TestPostgres } from './support/postgres';
import { type Figure, printTable, writeResults } from './support/report';
import { archive } from './scenarios/archive';
import { curve } from './scenarios/curve';
import { diffs } from './scenarios/diffs';
import { erasure } from './scenarios/erasure';
import { history } from './scenarios/history';
import { http } from './scenarios/http';
import { integrity } from './scenarios/integrity';
import { lifecycle } from './scenarios/lifecycle';
import { linger } from './scenarios/linger';
import { memory } from './scenarios/memory';
import { outage } from './scenarios/outage';
import { recovery } from './scenarios/recovery';
import { scale } from './scenarios/scale';
import { throughput } from './scenarios/throughput';

const SCENARIOS = [
  'throughput',
  'integrity',
  'curve',
  'linger',
  'http',
  'outage',
  'recovery',
  'memory',
  'scale',
  'history',
  'diffs',
  'erasure',
  'archive',
  'lifecycle',
] as const;
type Scenario = (typeof SCENARIOS)[number];

/** `node bench/dist/bench/run.js [scenario…]`: all scenarios, or only those named. */
async function main(): Promise<void> {
  const started = Date.now();
  console.log(`Node ${process.version} (${process.execPath}); BENCH_NODE chooses another line or binary`);
  const only = process.argv.slice(2) as Scenario[];
  const unknown = only.filter((s) => !SCENARIOS.includes(s));
  if (unknown.length) throw new Error(`unknown scenario ${unknown.join(', ')}; choose from ${SCENARIOS.join(', ')}`);
  const wanted = (s: Scenario) => only.length === 0 || only.includes(s);
  const figures: Figure[] = [];
  const details: Record<string, unknown> = {};
  const servers: TestPostgres[] = [];
  const failed: string[] = [];
  const step = async (name: Scenario, what: string, run: () => Promise<Figure[]>) => {
    console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${name}: ${what}`);
    try {
      figures.push(...(await run()));
    } catch (error) {
      failed.push(name);
      figures.push({
        key: `${name}.failed`,
        value: null,
        unit: '',
        note: String(error instanceof Error ? error.message : error).slice(0, 200),
      });
      console.log(`  FAILED: ${String(error instanceof Error ? error.stack : error)}`);
    }
  };
  const times = { warmupS: Number(process.env.BENCH_WARMUP_S ?? 2), measureS: Number(process.env.BENCH_HTTP_S ?? 4) };
  const memorySeconds = Number(process.env.BENCH_MEMORY_S ?? 60);
  const curveSeconds = Number(process.env.BENCH_CURVE_S ?? 3);
  const scaleRows = (process.env.BENCH_SCALE_ROWS ?? '1000000,10000000').split(',').map(Number);
  const scaleEntries = Number(process.env.BENCH_SCALE_ENTRIES ?? 50_000);
  const historyRows = Number(process.env.BENCH_HISTORY_ROWS ?? 10_000_000);
  const integrityEntries = Number(process.env.BENCH_INTEGRITY_ENTRIES ?? 100_000);
  try {
    const appDb = await startPostgres();
    servers.push(appDb);
    if (wanted('throughput')) {
      await step('throughput', 'raw pg, AuditService.log(), naive repository.insert()', () =>
        throughput(appDb, { entries: 100_000, naiveEntries: 5000, warmup: 2000, rounds: 2 }, details),
      );
    }
    if (wanted('integrity')) {
      await step(
        'integrity',
        'log() with the first migration only, integrity off, sealing on, sealing and entry keys on; then verify',
        () =>
          integrity(appDb, { entries: integrityEntries, warmup: 2000, rounds: Number(process.env.BENCH_INTEGRITY_ROUNDS ?? 3) }, details),
      );
    }
    if (wanted('curve')) {
      await step('curve', `log() throughput from 1, 10, 100 and 1000 concurrent callers, ${curveSeconds} s each`, () =>
        curve(appDb, curveSeconds, details),
      );
    }
    if (wanted('linger')) {
      await step('linger', 'async log() paced at 200 and 750 entries/s, batchDelayMs 0, 5, 10, 25 alternating: commits per entry', () =>
        linger(appDb, { rates: [200, 750], lingers: [0, 5, 10, 25], rounds: 3, seconds: 3 }, details),
      );
    }
    if (wanted('http')) {
      await step('http', 'POST /ndas on three apps (AUDIT_HTTP=false, async, sync), load alternating', () =>
        http(appDb, 'http', { ...times, rounds: Number(process.env.BENCH_HTTP_ROUNDS ?? 9) }, details),
      );
    }
    const audit = only.some((s) => ['outage', 'recovery', 'memory'].includes(s)) || only.length === 0 ? await startPostgres() : undefined;
    if (audit) servers.push(audit);
    if (audit && wanted('outage')) {
      await step('outage', 'POST /ndas with the audit database healthy, then killed', () =>
        outage(appDb, audit, { ...times, measureS: 5, rounds: 3 }, details),
      );
    }
    if (audit && wanted('recovery')) {
      await step('recovery', '1000 buffered log() calls, then the audit database returns', () => recovery(audit, details));
    }
    if (audit && wanted('memory')) {
      await step('memory', `${memorySeconds} s of POST /ndas with the audit database down`, () =>
        memory(appDb, audit, memorySeconds, details),
      );
    }
    if (wanted('scale')) {
      await step(
        'scale',
        `log() into audit_log holding ${scaleRows.join(', ')} rows, against an empty one (a server of its own)`,
        async () => {
          const pg = await startPostgres();
          try {
            return await scale(
              pg,
              {
                rows: scaleRows,
                entries: scaleEntries,
                warmup: 2000,
                rounds: 3,
                layout: process.env.BENCH_SCALE_LAYOUT === 'one' ? 'one' : 'months',
                sharedBuffers: process.env.BENCH_SCALE_SHARED_BUFFERS,
              },
              details,
            );
          } finally {
            await pg.stop();
          }
        },
      );
    }
    if (wanted('history')) {
      await step(
        'history',
        `reads of audit_log holding ${historyRows} rows: entity history, user range, export (a server of its own)`,
        async () => {
          const pg = await startPostgres();
          try {
            return await history(pg, { rows: historyRows, queries: 2000, exportRows: 1_000_000, insertRounds: 3 }, details);
          } finally {
            await pg.stop();
          }
        },
      );
    }
    if (wanted('diffs')) {
      const rows = Number(process.env.BENCH_DIFFS_ROWS ?? 0);
      await step(
        'diffs',
        `log() of rows with diffs into trails with and without the history page's index of other entities${rows ? `; then into trails of ${rows} rows` : ''} (a server of its own)`,
        async () => {
          const pg = await startPostgres();
          try {
            return await diffs(
              pg,
              {
                entries: Number(process.env.BENCH_DIFFS_ENTRIES ?? 30_000),
                warmup: 2000,
                rounds: Number(process.env.BENCH_DIFFS_ROUNDS ?? 5),
                rows,
              },
              details,
            );
          } finally {
            await pg.stop();
          }
        },
      );
    }
    if (wanted('erasure')) {
      const rows = Number(process.env.BENCH_ERASURE_ROWS ?? 10_000_000);
      await step('erasure', `erase one user's 10 000 rows in audit_log holding ${rows} rows; commitments' cost at birth`, async () => {
        const pg = await startPostgres();
        try {
          return await erasure(pg, { rows, userRows: 10_000, logRounds: Number(process.env.BENCH_ERASURE_ROUNDS ?? 5) }, details);
        } finally {
          await pg.stop();
        }
      });
    }
    if (wanted('archive')) {
      const rows = Number(process.env.BENCH_ARCHIVE_ROWS ?? 200_000);
      await step('archive', `audit-archive of a sealed month of ${rows} rows, then audit-verify --archive with no database`, async () => {
        const pg = await startPostgres();
        try {
          return await archive(pg, { rows }, details);
        } finally {
          await pg.stop();
        }
      });
    }
    if (wanted('lifecycle')) {
      const rows = Number(process.env.BENCH_LIFECYCLE_ROWS ?? 10_000_000);
      // The oldest two months are the two retention removes: 100k and 1M rows at 10M (a 20th and a 5th below that).
      const smallMonth = Math.min(100_000, Math.floor(rows / 20));
      const largeMonth = Math.min(1_000_000, Math.floor(rows / 5));
      await step(
        'lifecycle',
        `log() partitioned against plain; ${rows} rows over 12 monthly partitions: reads, retention of a ${smallMonth}- and a ${largeMonth}-row month (a server of its own)`,
        async () => {
          const pg = await startPostgres();
          try {
            return await lifecycle(
              pg,
              {
                rows,
                months: 12,
                smallMonth,
                largeMonth,
                queries: Number(process.env.BENCH_LIFECYCLE_QUERIES ?? 2000),
                insertRounds: Number(process.env.BENCH_LIFECYCLE_ROUNDS ?? 5),
                insertEntries: 30_000,
              },
              details,
            );
          } finally {
            await pg.stop();
          }
        },
      );
    }
  } finally {
    killAllApps();
    await Promise.allSettled(servers.map((s) => s.stop()));
  }
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    durationS: Math.round((Date.now() - started) / 1000),
  };
  printTable(figures);
  const file = `bench/results/${only.length ? only.join('-') : 'latest'}.json`;
  writeResults(join(REPO_ROOT, file), figures, meta, details);
  console.log(`\n${figures.length} figures in ${meta.durationS} s; written to ${file}`);
  if (failed.length) throw new Error(`scenario(s) failed their own checks: ${failed.join(', ')}`);
}

process.on('exit', killAllApps);
main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
