import { type ChaosApp, type ChaosApps } from './app-process';
import { AUDIT_DATABASE, AUDIT_WRITER, type TestPostgres } from './databases';
import { type FleetReport, runFleet } from './fleet';
import { type Load } from './load';

/** What a phase acts on. `restartApp` starts a new process of an app (same name, mode and spool) in its place; the old one is left running. */
export interface ChaosContext {
  auditDb: TestPostgres;
  load: Load;
  apps: ChaosApps;
  restartApp(old: ChaosApp): Promise<ChaosApp>;
  /** Starts a fleet instance: sync mode, its spool in a subdirectory named after it. */
  startFleetApp(name: string): Promise<ChaosApp>;
  /** The app that wrote the newest `audit.sealed` line. */
  lastSealer(): string | undefined;
  /** What the `fleet` phase did, once it ran. */
  fleet?: FleetReport;
  /** How long a fault is held, in ms; the healed state is watched for half as long. */
  holdMs: number;
  /** The apps' `AUDIT_WRITE_TIMEOUT_MS`: a lock must outlast it for writes to fail. */
  writeTimeoutMs: number;
  log(message: string): void;
}

/** One step of the schedule: a fault applied, held and healed while the load runs. */
export interface Phase {
  name: string;
  /** Which mode and which fallback the phase exercises. */
  exercises: string;
  run(context: ChaosContext): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The fault schedule, in order. The load goes to the sync-mode app with a spool, except in
 * `overflow`, which needs the ring: in sync mode with a spool, refused entries skip the ring.
 *
 * @example
 * for (const phase of PHASES) { load.phase = phase.name; await phase.run(context); }
 */
export const PHASES: readonly Phase[] = [
  {
    name: 'baseline',
    exercises: 'sync app, healthy database: group commit',
    run: ({ holdMs }) => sleep(holdMs),
  },
  {
    name: 'kill-db',
    exercises: 'sync app + spool: refused connections, entries fsynced to the spool, replay on recovery',
    run: async ({ auditDb, holdMs }) => {
      await auditDb.kill();
      await sleep(holdMs);
      await auditDb.restart();
      await sleep(holdMs / 2);
    },
  },
  {
    name: 'lock',
    exercises: 'sync app + spool: writes hang on ACCESS EXCLUSIVE until the write timeout, then spool',
    run: async ({ auditDb, holdMs, writeTimeoutMs }) => {
      const locker = await auditDb.connect(AUDIT_DATABASE);
      try {
        await locker.query('BEGIN');
        await locker.query('LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
        // Released sooner, a write waiting on the lock would commit just in time and nothing would fail.
        await sleep(Math.max(holdMs, 2 * writeTimeoutMs + 500));
        await locker.query('COMMIT');
      } finally {
        await locker.end();
      }
      await sleep(holdMs / 2);
    },
  },
  {
    name: 'slow',
    exercises: 'sync app + spool: every INSERT answers just under the write timeout; the backlog stays bounded, late entries spool',
    run: async ({ auditDb, holdMs, writeTimeoutMs }) => {
      // A statement trigger that sleeps: each INSERT alone commits in time, entries queued behind it do not.
      await auditDb.query(
        `CREATE FUNCTION chaos_slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_sleep(${(0.9 * writeTimeoutMs) / 1000}); RETURN NULL; END $$`,
        [],
        AUDIT_DATABASE,
      );
      await auditDb.query(
        'CREATE TRIGGER chaos_slow_insert BEFORE INSERT ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION chaos_slow_insert()',
        [],
        AUDIT_DATABASE,
      );
      try {
        await sleep(Math.max(holdMs, 3 * writeTimeoutMs));
      } finally {
        await auditDb.query('DROP TRIGGER chaos_slow_insert ON audit_log', [], AUDIT_DATABASE);
        await auditDb.query('DROP FUNCTION chaos_slow_insert()', [], AUDIT_DATABASE);
      }
      await sleep(holdMs / 2);
    },
  },
  {
    name: 'revoke',
    exercises: 'sync app + spool: INSERT refused (42501) for the app role, GRANT recovers',
    run: async ({ auditDb, holdMs }) => {
      await auditDb.query(`REVOKE INSERT ON audit_log FROM ${AUDIT_WRITER.user}`, [], AUDIT_DATABASE);
      try {
        await sleep(holdMs);
      } finally {
        await auditDb.query(`GRANT INSERT ON audit_log TO ${AUDIT_WRITER.user}`, [], AUDIT_DATABASE);
      }
      await sleep(holdMs / 2);
    },
  },
  {
    name: 'overflow',
    exercises: 'async app with a small ring + spool, database killed: the ring overflows, evictions go to the spool',
    run: async (context) => {
      context.apps.target = 'async';
      try {
        await context.auditDb.kill();
        await sleep(context.holdMs);
        await context.auditDb.restart();
        await sleep(context.holdMs / 2);
      } finally {
        context.apps.target = 'sync';
      }
    },
  },
  {
    name: 'rolling-deploy',
    exercises:
      'sync app + spool: a new app process starts on the same spool directory while the old one still spools, then the old one stops',
    run: async (context) => {
      await context.auditDb.kill();
      await sleep(context.holdMs / 2);
      const old = context.apps.sync;
      // Both run on one spool directory, as in a rolling deploy on a shared volume; the load moves to the new one.
      await context.restartApp(context.apps.sync);
      await sleep(context.holdMs / 2);
      await context.auditDb.restart();
      await sleep(context.holdMs / 4);
      context.log('SIGTERM of the old sync app');
      await old.stop();
      await sleep(context.holdMs / 2);
    },
  },
  {
    name: 'kill-app',
    exercises: 'sync app + spool: database killed, app SIGKILLed mid-outage, restarted on the same spool while down',
    run: async (context) => {
      await context.auditDb.kill();
      await sleep(context.holdMs / 2);
      context.log('SIGKILL of the sync app');
      await context.apps.sync.kill();
      await context.restartApp(context.apps.sync);
      await sleep(context.holdMs / 2);
      await context.auditDb.restart();
      await sleep(context.holdMs / 2);
    },
  },
  {
    name: 'fleet',
    exercises:
      'three sync apps on one audit database, a spool subdirectory each: a rolling restart of each, one SIGKILLed mid-load, the sealing one stopped while it seals',
    run: runFleet,
  },
];
