import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of `/proc/<pid>/stat` times. */
const TICKS_PER_S = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface ProcStat {
  ppid: number;
  /** utime + stime, in clock ticks. */
  ticks: number;
  /** Start time since boot: tells a reused pid apart. */
  start: number;
}

function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name (which may hold spaces), from field 3 (state) on.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]), start: Number(fields[19]) };
}

/** CPU times of the processes one measurement covers, at one moment. */
export interface CpuSnapshot {
  app: ProcStat | undefined;
  postgres: Map<number, ProcStat>;
}

/**
 * utime + stime of the app process (all its threads) and of the PostgreSQL server: the postmaster
 * and every child of it (each backend serving a connection, and the WAL writer, checkpointer and
 * the other helpers that the load makes work).
 *
 * @example
 * const before = cpuSnapshot(app.pid, pg.postmasterPid());
 */
export function cpuSnapshot(appPid: number, postmasterPid: number | undefined): CpuSnapshot {
  const postgres = new Map<number, ProcStat>();
  if (postmasterPid !== undefined) {
    for (const name of readdirSync('/proc')) {
      const pid = Number(name);
      if (!Number.isInteger(pid)) continue;
      const stat = procStat(pid);
      if (stat && (pid === postmasterPid || stat.ppid === postmasterPid)) postgres.set(pid, stat);
    }
  }
  return { app: procStat(appPid), postgres };
}

/** CPU spent between two snapshots, in ms. */
export interface CpuSpent {
  appMs: number;
  postgresMs: number;
  /** PostgreSQL processes that ended in between: their time after `before` is not counted. */
  ended: number;
}

/**
 * The CPU time spent between `before` and `after`; a PostgreSQL process that started in between
 * counts from zero.
 *
 * @example
 * const { appMs, postgresMs } = cpuSpent(before, cpuSnapshot(app.pid, pg.postmasterPid()));
 */
export function cpuSpent(before: CpuSnapshot, after: CpuSnapshot): CpuSpent {
  const ms = (ticks: number) => (ticks * 1000) / TICKS_PER_S;
  let postgres = 0;
  for (const [pid, now] of after.postgres) {
    const then = before.postgres.get(pid);
    postgres += now.ticks - (then && then.start === now.start ? then.ticks : 0);
  }
  const ended = [...before.postgres.keys()].filter((pid) => !after.postgres.has(pid)).length;
  const app = before.app && after.app && before.app.start === after.app.start ? after.app.ticks - before.app.ticks : NaN;
  return { appMs: ms(app), postgresMs: ms(postgres), ended };
}
