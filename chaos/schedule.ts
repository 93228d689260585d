import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { account, latencyByPhase } from './accounting';
import { ChaosApp, isSettled, liveApps, settle, targetOf } from './app-process';
import { countAuditRows, prepareAuditDatabase, startPostgres, type TestPostgres } from './databases';
import { type ChaosContext, PHASES } from './faults';
import { ChaosIntegrity } from './integrity';
import { Load, type RequestRecord } from './load';
import { PeakSampler } from './peaks';
import { type CatchUp, type ChaosOptions, type ChaosResult } from './result';
import { spooledKeys, spoolInventory } from './spool-files';
import { leftoverDir } from '../test/support/leftovers';

export { type CatchUp, type ChaosOptions, type ChaosResult };

const WRITE_TIMEOUT_MS = 1000;

/**
 * Runs the whole fault schedule ({@link PHASES}) against the example app under load, with two
 * embedded PostgreSQL servers of its own (NDA data, audit), and accounts for every acknowledged
 * request in `audit_log`. Integrity is on in every app: at the end, once every row is sealed, the
 * trail is verified against the apps' `audit.sealed` lines and the signing key. Cleans up everything it started, also when it fails.
 *
 * @example
 * const result = await runChaos({ main: 'chaos/dist/src/main.js', phaseMs: 5000, workers: 8 });
 * if (result.missing || result.duplicated) process.exitCode = 1;
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const started = Date.now();
  const log = (message: string) => options.log?.(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${message}`);
  const servers: TestPostgres[] = [];
  const apps: ChaosApp[] = [];
  const tmp = await leftoverDir('audit-chaos');
  const spools = { sync: join(tmp, 'spool-sync'), async: join(tmp, 'spool-async'), fleet: join(tmp, 'spool-fleet') };
  const spoolDirs = async () => [spools.sync, spools.async, ...(await subdirectories(spools.fleet))];
  let load: Load | undefined;
  let sampler: PeakSampler | undefined;
  try {
    const startServer = async () => {
      const server = await startPostgres();
      servers.push(server);
      return server;
    };
    const [appDb, auditDb] = await Promise.all([startServer(), startServer()]);
    const auditUrl = await prepareAuditDatabase(auditDb);
    log(`PostgreSQL up: data on ${appDb.port}, audit on ${auditDb.port}`);
    const events = new Map<string, Record<string, number>>();
    const integrity = new ChaosIntegrity();
    let lastSealer: string | undefined;
    const onEvent = (app: string, event: string, line: string) => {
      integrity.line(event, line);
      if (event === 'audit.sealed') lastSealer = app;
      const phase = load?.phase ?? 'start-up';
      const tally = events.get(phase) ?? {};
      const name = `${app}:${event.replace(/^audit\./, '')}`;
      tally[name] = (tally[name] ?? 0) + 1;
      events.set(phase, tally);
    };
    // Each app's sessions carry its name, so that a phase can tell which app holds a lock.
    const auditUrlOf = (name: string) => {
      const url = new URL(auditUrl);
      url.searchParams.set('application_name', `chaos-${name}`);
      return url.toString();
    };
    const env = (name: string, mode: 'sync' | 'async', spoolDir: string): NodeJS.ProcessEnv => ({
      ...(options.env ?? process.env),
      DATABASE_URL: appDb.url(),
      AUDIT_DATABASE_URL: auditUrlOf(name),
      AUDIT_MODE: mode,
      AUDIT_SPOOL_DIR: spoolDir,
      AUDIT_WRITE_TIMEOUT_MS: String(WRITE_TIMEOUT_MS),
      AUDIT_RETRY_BACKOFF_MS: '100',
      AUDIT_RETRY_BACKOFF_MAX_MS: '500',
      AUDIT_BUFFER_SIZE: mode === 'async' ? String(options.overflowBufferSize ?? 50) : '1000',
      SENTRY_DSN: '',
      ...integrity.env,
    });
    // Each app name keeps its mode and spool directory across restarts: a fleet instance has a subdirectory of its own.
    const configs = new Map<string, { mode: 'sync' | 'async'; spoolDir: string }>([
      ['sync', { mode: 'sync', spoolDir: spools.sync }],
      ['async', { mode: 'async', spoolDir: spools.async }],
    ]);
    const startApp = async (name: string) => {
      const { mode, spoolDir } = configs.get(name) as { mode: 'sync' | 'async'; spoolDir: string };
      const app = await ChaosApp.start(name, options.main, env(name, mode, spoolDir), (event, line) => onEvent(name, event, line));
      apps.push(app);
      return app;
    };
    const [sync, async] = await Promise.all([startApp('sync'), startApp('async')]);
    const context: ChaosContext = {
      auditDb,
      load: undefined as unknown as Load,
      apps: { sync, async, fleet: [], target: 'sync' },
      restartApp: async (old) => {
        const app = await startApp(old.name);
        const { apps } = context;
        if (apps.sync === old) apps.sync = app;
        else if (apps.async === old) apps.async = app;
        else apps.fleet = apps.fleet.map((running) => (running === old ? app : running));
        log(`${app.name} app restarted on port ${app.port}`);
        return app;
      },
      lastSealer: () => lastSealer,
      startFleetApp: async (name) => {
        configs.set(name, { mode: 'sync', spoolDir: join(spools.fleet, name) });
        const app = await startApp(name);
        log(`${name} app started on port ${app.port}`);
        return app;
      },
      holdMs: options.phaseMs,
      writeTimeoutMs: WRITE_TIMEOUT_MS,
      log,
    };
    log(`apps up: sync on ${sync.port}, async on ${async.port}; load with ${options.workers} workers`);
    let sent = 0;
    load = context.load = new Load(() => targetOf(context.apps, sent++), options.workers);
    sampler = PeakSampler.start(() => liveApps(context.apps), 250);
    const catchUps = new Map<string, CatchUp>();
    for (const phase of PHASES) {
      load.phase = phase.name;
      log(`phase ${phase.name}: ${phase.exercises}`);
      await phase.run(context);
      // Healed and under load, each app must empty its ring and spool by itself, without a new outage.
      const waited = Date.now();
      const healthAfter = await settle(liveApps(context.apps), options.catchUpMs ?? Math.max(3000, options.phaseMs));
      const caughtUp = Object.values(healthAfter).every(isSettled);
      catchUps.set(phase.name, { caughtUpMs: caughtUp ? Date.now() - waited : null, healthAfter });
      if (!caughtUp) log(`phase ${phase.name}: not caught up: ${JSON.stringify(healthAfter)}`);
    }
    load.phase = 'settle';
    await load.stop();
    log(`load stopped after ${load.records.length} requests; waiting for the apps to flush and replay`);
    const finalHealth = await settle(liveApps(context.apps), options.settleTimeoutMs ?? 30_000);
    const settled = Object.values(finalHealth).every(isSettled);
    const peaks = await sampler.stop();
    const accounting = account(load.records, await countAuditRows(auditDb), await spooledKeys(await spoolDirs()));
    log(`verifying the sealed trail (audit-verify, against the witness and the key)`);
    const verdict = await integrity.verify(auditDb);
    const names = PHASES.map((p) => p.name);
    return {
      acknowledged: accounting.acknowledged,
      recorded: accounting.recorded,
      missing: accounting.missing.length,
      duplicated: accounting.duplicated.length,
      unacknowledgedRows: accounting.unacknowledgedRows,
      faults: names.filter((n) => n !== 'baseline'),
      phases: latencyByPhase(load.records, names).map((figures, i) => ({
        ...figures,
        exercises: PHASES[i].exercises,
        events: events.get(figures.phase) ?? {},
        ...(catchUps.get(figures.phase) as CatchUp),
      })),
      stalled: [...catchUps].filter(([, c]) => c.caughtUpMs === null).map(([name]) => name),
      settled,
      finalHealth,
      peaks,
      spoolLeft: await spoolInventory(await spoolDirs()),
      fleet: context.fleet && { ...context.fleet, acknowledgedBy: acknowledgedBy(load.records, 'fleet') },
      integrity: verdict,
      missingEntries: accounting.missing.slice(0, 100),
      duplicatedEntries: accounting.duplicated.slice(0, 100),
      options: { main: options.main, phaseMs: options.phaseMs, workers: options.workers, overflowBufferSize: options.overflowBufferSize },
      durationMs: Date.now() - started,
    };
  } finally {
    await load?.stop();
    await sampler?.stop();
    await Promise.all(apps.map((app) => app.stop()));
    for (const server of servers) await server.ensureRunning().catch(() => undefined);
    await Promise.all(servers.map((server) => server.stop()));
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Requests of `phase` acknowledged, by the app that answered them. */
function acknowledgedBy(records: readonly RequestRecord[], phase: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const record of records) if (record.phase === phase && record.acknowledged) counts[record.app] = (counts[record.app] ?? 0) + 1;
  return counts;
}

/** The subdirectories of `dir` (none when it does not exist). */
async function subdirectories(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isDirectory()).map((entry) => join(dir, entry.name));
}
