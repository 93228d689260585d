import { type Client } from 'pg';
import { type ChaosApp, liveApps } from './app-process';
import { AUDIT_DATABASE } from './databases';
import { type ChaosContext } from './faults';

/** What the `fleet` phase did to its instances. */
export interface FleetReport {
  /** The instances restarted one after the other (the new one up before the old one's SIGTERM). */
  rolled: string[];
  /** The instance SIGKILLed while the load went to it. */
  killed: string;
  /** The sealing app stopped: the one found with its seal waiting on a lock of `audit_seal`, else the one that sealed last. */
  sealerStopped: string | null;
  /** Whether that app exited by itself after SIGTERM (false: it needed the SIGKILL 10 s later). */
  sealerExitedByItself: boolean | null;
  /** How long that app took to exit after SIGTERM (ms). */
  sealerStopMs: number | null;
  /** Whether it was caught with its seal's INSERT waiting; false: no seal was caught, the app that sealed last was stopped. */
  sealerCaughtMidSeal: boolean;
  /** When no app was caught sealing: the audit database's sessions then, to see why. */
  sessions?: unknown[];
  /** Requests of the phase acknowledged, by app (filled in once the load has stopped). */
  acknowledgedBy?: Record<string, number>;
}

const FLEET = ['fleet-1', 'fleet-2', 'fleet-3'];
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The `fleet` phase: three sync-mode instances, each with a spool subdirectory of its own, share
 * the audit database and take the load in turn. Each is restarted in turn (a rolling deploy), one
 * is SIGKILLed while requests go to it, and the sealing instance is stopped: the one caught with its
 * seal's INSERT held on a lock of `audit_seal`, else the one that sealed last. The sealer's advisory
 * lock lets one instance seal at a time; a seal cut short must leave nothing behind, and another
 * instance must seal on.
 *
 * @example
 * await runFleet(context); // context.fleet: { rolled: [...], killed: 'fleet-2', sealerStopped: 'fleet-1', ... }
 */
export async function runFleet(context: ChaosContext): Promise<void> {
  const { apps, holdMs, log } = context;
  apps.fleet = await Promise.all(FLEET.map((name) => context.startFleetApp(name)));
  apps.target = 'fleet';
  await sleep(holdMs / 2);

  for (let i = 0; i < apps.fleet.length; i++) {
    const old = apps.fleet[i];
    await context.restartApp(old);
    await sleep(holdMs / 4);
    log(`rolling restart: SIGTERM of the old ${old.name}`);
    await old.stop();
  }

  const victim = apps.fleet[1];
  log(`SIGKILL of ${victim.name}, still taking its share of the load`);
  await victim.kill();
  await sleep(holdMs / 4);
  await context.restartApp(victim);
  await sleep(holdMs / 2);

  const stopped = await stopTheSealer(context);
  context.fleet = { rolled: [...FLEET], killed: victim.name, ...stopped };
  await sleep(holdMs / 2);
}

/**
 * Holds `audit_seal` in EXCLUSIVE mode (reads go on, a seal's INSERT waits), finds the app whose
 * session waits there, SIGTERMs it mid-seal, then lets the lock go and starts the app again. A
 * hold that catches no sealer within 5 s is let go and tried once more; then the app that sealed
 * last is stopped instead, between two of its seals (`sealerCaughtMidSeal: false`). The waiting
 * session is looked for from a second connection: the locker's own transaction would see
 * `pg_stat_activity` as it was at its first read, whatever happens after.
 */
async function stopTheSealer(context: ChaosContext): Promise<SealerStop> {
  let sessions: unknown[] = [];
  const watcher = await context.auditDb.connect(AUDIT_DATABASE);
  try {
    for (let attempt = 1; attempt <= 2; attempt++) {
      const locker = await context.auditDb.connect(AUDIT_DATABASE);
      try {
        await locker.query('BEGIN');
        await locker.query('LOCK TABLE audit_seal IN EXCLUSIVE MODE');
        const sealer = await waitForSealer(watcher, context, 5_000);
        if (sealer) {
          context.log(`SIGTERM of ${sealer.name} while its seal waits on audit_seal`);
          // The lock outlives the app's shutdown: its seal never gets to commit.
          const stop = await stopAndRestart(context, sealer);
          await locker.query('COMMIT');
          return { ...stop, sealerCaughtMidSeal: true };
        }
        sessions = (
          await watcher.query(
            `SELECT a.application_name, a.state, a.wait_event_type, a.wait_event, left(a.query, 120) AS query,
               (SELECT string_agg(l.mode || CASE WHEN l.granted THEN '' ELSE ' (waiting)' END, ', ') FROM pg_locks AS l
                 WHERE l.pid = a.pid AND l.locktype = 'relation' AND l.relation = 'audit_seal'::regclass) AS audit_seal_locks
             FROM pg_stat_activity AS a WHERE a.datname = current_database()`,
          )
        ).rows;
      } finally {
        await locker.query('COMMIT').catch(() => undefined);
        await locker.end();
      }
      context.log(`no app caught sealing in hold ${attempt}; the sessions: ${JSON.stringify(sessions)}`);
      await sleep(1000);
    }
  } finally {
    await watcher.end();
  }
  const last = liveApps(context.apps).find((app) => app.name === context.lastSealer());
  if (!last) return { sealerStopped: null, sealerExitedByItself: null, sealerStopMs: null, sealerCaughtMidSeal: false, sessions };
  context.log(`SIGTERM of ${last.name}, the app that sealed last`);
  return { ...(await stopAndRestart(context, last)), sealerCaughtMidSeal: false, sessions };
}

type SealerStop = Pick<FleetReport, 'sealerStopped' | 'sealerExitedByItself' | 'sealerStopMs' | 'sealerCaughtMidSeal' | 'sessions'>;

/** SIGTERMs `app`, times its exit, and starts it again in its place. */
async function stopAndRestart(
  context: ChaosContext,
  app: ChaosApp,
): Promise<Pick<FleetReport, 'sealerStopped' | 'sealerExitedByItself' | 'sealerStopMs'>> {
  const stoppedAt = Date.now();
  const exitedByItself = await app.stop();
  const stopMs = Date.now() - stoppedAt;
  await context.restartApp(app);
  return { sealerStopped: app.name, sealerExitedByItself: exitedByItself, sealerStopMs: stopMs };
}

/**
 * The app whose session waits for the ROW EXCLUSIVE lock of an INSERT into `audit_seal` (a seal),
 * polled every 100 ms for at most `ms` on `watcher`, outside any transaction so that each poll
 * reads the sessions afresh. The lock asked for tells, not the text of the session's `query`.
 */
async function waitForSealer(watcher: Client, context: ChaosContext, ms: number): Promise<ChaosApp | undefined> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const { rows } = await watcher.query<{ name: string }>(
      `SELECT a.application_name AS name FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
       WHERE NOT l.granted AND l.locktype = 'relation' AND l.relation = 'audit_seal'::regclass AND l.mode = 'RowExclusiveLock'
         AND a.datname = current_database() AND a.application_name LIKE 'chaos-%'`,
    );
    const names = new Set(rows.map((row) => row.name.slice('chaos-'.length)));
    const sealer = liveApps(context.apps).find((app) => names.has(app.name));
    if (sealer) return sealer;
    await sleep(100);
  }
  return undefined;
}
