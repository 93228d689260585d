import 'reflect-metadata';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { killAllApps } from './support/app-process';
import { REPO_ROOT, startPostgres, type TestPostgres } from './support/postgres';
import { type Figure, printTable, writeResults } from './support/report';
import { throughput } from './scenarios/throughput';

const SCENARIOS = ['throughput', 'http', 'outage', 'recovery', 'memory'] as const;
type Scenario = (typeof SCENARIOS)[number];

/** `node bench/dist/bench/run.js [scenario…]`: all scenarios, or only those named. */
async function main(): Promise<void> {
  const started = Date.now();
  const only = process.argv.slice(2) as Scenario[];
  const unknown = only.filter((s) => !SCENARIOS.includes(s));
  if (unknown.length) throw new Error(`unknown scenario ${unknown.join(', ')}; choose from ${SCENARIOS.join(', ')}`);
  const wanted = (s: Scenario) => only.length === 0 || only.includes(s);
  const figures: Figure[] = [];
  const details: Record<string, unknown> = {};
  const servers: TestPostgres[] = [];
  const step = (name: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${name}`);
  try {
    step('starting PostgreSQL');
    const main = await startPostgres();
    servers.push(main);
    if (wanted('throughput')) {
      step('throughput: raw pg, AuditService.log(), naive repository.insert()');
      figures.push(...(await throughput(main, { entries: 100_000, naiveEntries: 10_000, warmup: 2000 }, details)));
    }
  } finally {
    killAllApps();
    await Promise.allSettled(servers.map((s) => s.stop()));
  }
  const meta = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, durationS: Math.round((Date.now() - started) / 1000) };
  printTable(figures);
  writeResults(join(REPO_ROOT, 'bench/results/latest.json'), figures, meta, details);
  console.log(`\n${figures.length} figures in ${meta.durationS} s; written to bench/results/latest.json`);
}

process.on('exit', killAllApps);
main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
