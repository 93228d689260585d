import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where the harness puts clusters: a directory the `postgres` user can reach whatever TMPDIR is. */
export const CLUSTER_ROOT = '/tmp';

const RUN_VARIABLE = 'AUDIT_TEST_RUN';
const PATTERN = /^audit-(?:test-pg|build|infra|chaos|crash|disk)-(\d+)-(\d+)-/;
/** Clusters named before runs had ids: `audit-test-pg-<pid>-<random>`. */
const OLD_PATTERN = /^audit-test-pg-(\d+)-[0-9a-f]{8}$/;

/**
 * The id of this test run: the jest process's pid, set by the global setup for its workers (the
 * process's own pid outside jest: bench, chaos).
 */
export function runId(): string {
  return process.env[RUN_VARIABLE] || String(process.pid);
}

/**
 * A name for a temporary directory of kind `prefix` that {@link sweepLeftovers} can attribute:
 * `<prefix>-<run>-<pid>-<random>`.
 *
 * @example
 * join(CLUSTER_ROOT, leftoverName('audit-test-pg')); // /tmp/audit-test-pg-4711-4720-9f3a1c2e
 */
export function leftoverName(prefix: LeftoverKind): string {
  return `${prefix}-${runId()}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** The kinds of temporary directory the harness makes, each swept once its run is gone. */
export type LeftoverKind = 'audit-test-pg' | 'audit-build' | 'audit-infra' | 'audit-chaos' | 'audit-crash' | 'audit-disk';

/**
 * Creates a temporary directory of kind `prefix` under the system's temporary directory, named
 * by {@link leftoverName}: a run killed before it removes the directory leaves it to the next sweep.
 *
 * @example
 * const dir = await leftoverDir('audit-crash'); // /tmp/audit-crash-4711-4720-9f3a1c2e
 */
export async function leftoverDir(prefix: LeftoverKind): Promise<string> {
  const dir = join(tmpdir(), leftoverName(prefix));
  await mkdir(dir, { mode: 0o700 });
  return dir;
}

/**
 * Where this run mirrors the PostgreSQL binaries when the server's user cannot reach the
 * project's (a private checkout): one directory for the run, removed with its clusters.
 *
 * @example
 * await embeddedPostgresEntry({ cacheRoot: binariesRoot() });
 */
export function binariesRoot(): string {
  return join(CLUSTER_ROOT, `audit-test-pg-${runId()}-${runId()}-binaries`);
}

/**
 * Removes the clusters and builds of run `run` (all done when it calls this) and those of runs
 * whose processes are all gone (a killed jest), killing a postmaster still running in one.
 * Directories of live runs, such as a colleague's, stay.
 *
 * @example
 * sweepLeftovers(runId()); // from jest's globalTeardown
 */
export function sweepLeftovers(run?: string): string[] {
  const removed: string[] = [];
  for (const root of new Set([CLUSTER_ROOT, tmpdir()])) {
    for (const name of readdirSync(root)) {
      const found = leftoverOwner(name);
      if (!found) continue;
      const { run: owner, pid } = found;
      if (owner !== run && (alive(Number(owner)) || alive(Number(pid)))) continue;
      const dir = join(root, name);
      try {
        removeLeftover(dir);
        removed.push(dir);
      } catch (error) {
        // One directory that cannot go must not keep the others: the next sweep tries it again.
        console.error(`could not remove ${dir}: ${String(error)}`);
      }
    }
  }
  return removed;
}

/**
 * The run and the process a temporary directory named `name` belongs to, as {@link sweepLeftovers}
 * reads them; undefined for a name that is not one of the harness's.
 *
 * @example
 * leftoverOwner('audit-infra-4711-4720-9f3a1c2e'); // { run: '4711', pid: '4720' }
 */
export function leftoverOwner(name: string): { run: string; pid: string } | undefined {
  const match = PATTERN.exec(name);
  if (match) return { run: match[1], pid: match[2] };
  const old = OLD_PATTERN.exec(name);
  return old ? { run: old[1], pid: old[1] } : undefined;
}

/** The id of the jest run this process belongs to; undefined outside one (a benchmark, the chaos run). */
export function testRunId(): string | undefined {
  return process.env[RUN_VARIABLE] || undefined;
}

/** Marks this process as the root of a test run, so the worker processes it starts name theirs after it. */
export function beginRun(): void {
  process.env[RUN_VARIABLE] = String(process.pid);
}

/**
 * Removes a directory of the harness's, first SIGKILLing every process working in it: a cluster's
 * postmaster and, when the postmaster was killed before, the backends it left, which go on writing
 * (a long statement, new WAL segments) until they notice. The removal is retried while a process
 * just killed finishes the write it was in.
 *
 * @example
 * removeLeftover('/tmp/audit-test-pg-4711-4720-9f3a1c2e');
 */
export function removeLeftover(dir: string): void {
  for (const pid of processesIn(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // It has just ended.
    }
  }
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
}

/**
 * The processes whose working directory is `dir` or below it (PostgreSQL's postmaster and backends
 * work in their data directory). Without /proc: the postmaster `dir` records, if it still runs
 * (its command line, which names the directory, checked where it can be: pids get reused).
 */
function processesIn(dir: string): number[] {
  if (!existsSync('/proc/self')) {
    try {
      const pid = Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return alive(pid) ? [pid] : [];
    } catch {
      return [];
    }
  }
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (cwd === dir || cwd.startsWith(`${dir}/`)) found.push(Number(entry));
    } catch {
      // Gone, or another user's process this one may not inspect.
    }
  }
  return found;
}

/**
 * Whether process `pid` runs. A zombie does not: it has exited, holds no port and no file, and
 * only waits for its parent (or, orphaned, for init, which may take a second or two) to reap it.
 *
 * @example
 * alive(process.pid); // true
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    // Without /proc, kill(pid, 0) is all there is to go by; with it, the process has just gone.
    return !existsSync('/proc/self');
  }
}
