import { type EntryProblem, type PhaseFigures } from './accounting';
import { type AuditHealth } from './app-process';
import { type FleetReport } from './fleet';
import { type IntegrityVerdict } from './integrity';
import { type Peaks } from './peaks';

/** How to run the schedule. */
export interface ChaosOptions {
  /** The compiled example app, `…/src/main.js`. */
  main: string;
  /** Base environment of the app processes (`NODE_PATH` for a build outside the repository). */
  env?: NodeJS.ProcessEnv;
  /** How long each fault is held, in ms. */
  phaseMs: number;
  workers: number;
  /** Ring size of the async app of the `overflow` phase. */
  overflowBufferSize?: number;
  /** How long the apps get after each phase, load still running, to catch up (default max(3 s, phaseMs)). */
  catchUpMs?: number;
  /** How long the apps get, after the load, to flush and replay everything. */
  settleTimeoutMs?: number;
  log?: (message: string) => void;
}

/** How long after a phase's end the apps took to catch up (`null`: not within the window), and their last health. */
export interface CatchUp {
  caughtUpMs: number | null;
  healthAfter: Record<string, AuditHealth | undefined>;
}

/** Everything one run measured; `missing` and `duplicated` must be 0. */
export interface ChaosResult {
  acknowledged: number;
  recorded: number;
  missing: number;
  duplicated: number;
  unacknowledgedRows: number;
  faults: string[];
  /** Per phase: audit event lines by `app:event`, and each app's `/health` at the phase's end. */
  phases: (PhaseFigures & { exercises: string; events: Record<string, number> } & CatchUp)[];
  /** Phases after which an app had not caught up (up, nothing buffered or spooled) within the window. */
  stalled: string[];
  /** Whether every app reported `up`, nothing buffered and nothing spooled before the count. */
  settled: boolean;
  finalHealth: Record<string, AuditHealth | undefined>;
  /** Per app: the most entries pending to the database and the largest RSS sampled during the run. */
  peaks: Peaks;
  spoolLeft: { dir: string; files: number; entries: number }[];
  /** What the `fleet` phase did: the instances rolled and killed, the sealer stopped mid-seal. */
  fleet?: FleetReport;
  /** `audit-verify` at the end: must be clean. */
  integrity: IntegrityVerdict;
  missingEntries: EntryProblem[];
  duplicatedEntries: EntryProblem[];
  options: Omit<ChaosOptions, 'env' | 'log'>;
  durationMs: number;
}
