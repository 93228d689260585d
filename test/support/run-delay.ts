import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * A thread whose time on a core and time spent runnable but not running (waiting for a core) Linux
 * accounts in `/proc/<pid>/task/<tid>/schedstat` (its first two fields, in nanoseconds).
 */
export interface WatchedThread {
  label: string;
  schedstat: string;
}

/** The threads of process `pid` whose name (`comm`) matches `name`, labelled `label`. */
export function threadsOf(pid: number, name: RegExp, label: string): WatchedThread[] {
  const threads: WatchedThread[] = [];
  for (const tid of safeList(`/proc/${pid}/task`)) {
    if (name.test(safeRead(`/proc/${pid}/task/${tid}/comm`).trim())) {
      threads.push({ label, schedstat: `/proc/${pid}/task/${tid}/schedstat` });
    }
  }
  return threads;
}

/** The processes descended from `root` (children, grandchildren, …), with their command lines. */
export function descendants(root: number): { pid: number; cmdline: string }[] {
  const parents = new Map<number, number>();
  for (const entry of safeList('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    // Fields after the command name, which may hold spaces and parentheses: state, ppid, …
    const stat = safeRead(`/proc/${entry}/stat`);
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid) parents.set(Number(entry), ppid);
  }
  const found: { pid: number; cmdline: string }[] = [];
  for (const pid of parents.keys()) {
    for (let up = parents.get(pid); up !== undefined; up = parents.get(up)) {
      if (up === root) {
        found.push({ pid, cmdline: safeRead(`/proc/${pid}/cmdline`).replace(/\0/g, ' ') });
        break;
      }
    }
  }
  return found;
}

/**
 * Sets the scheduling priority (nice, -20 to 19) of every thread of the processes `pids`; threads
 * they start later inherit it. False when not allowed (raising it needs root or CAP_SYS_NICE).
 */
export function setThreadsPriority(pids: number[], nice: number): boolean {
  let allowed = true;
  for (const pid of pids) {
    for (const tid of safeList(`/proc/${pid}/task`)) {
      try {
        setPriority(Number(tid), nice);
      } catch (error) {
        // A thread that ended meanwhile is no refusal.
        if ((error as { code?: string }).code !== 'ESRCH') allowed = false;
      }
    }
  }
  return allowed;
}

/**
 * Sets the nice value of the scheduling groups (Linux autogroups, one per session) the processes
 * `pids` run in: with autogroups on, the scheduler shares the cores between groups first, so a
 * thread's own nice value only ranks it within its group. Returns what puts each group back as it
 * was, or undefined when not allowed (or without autogroups; nothing is changed then).
 */
export function setGroupsPriority(pids: number[], nice: number): (() => void) | undefined {
  const groups = new Map<string, { pid: number; nice: string }>();
  for (const pid of pids) {
    const [, group, was] = /^(\S+) nice (-?\d+)/.exec(safeRead(`/proc/${pid}/autogroup`)) ?? [];
    if (group && !groups.has(group)) groups.set(group, { pid, nice: was });
  }
  const restore = () => {
    for (const { pid, nice: was } of groups.values()) {
      try {
        writeFileSync(`/proc/${pid}/autogroup`, was);
      } catch {
        // The group ended with its processes.
      }
    }
  };
  try {
    if (groups.size === 0) return undefined;
    for (const { pid } of groups.values()) writeFileSync(`/proc/${pid}/autogroup`, String(nice));
    return restore;
  } catch {
    restore();
    return undefined;
  }
}

/** The main thread of process `pid` (its id is the process's), labelled `label`. */
export function mainThread(pid: number, label: string): WatchedThread {
  return { label, schedstat: `/proc/${pid}/task/${pid}/schedstat` };
}

/**
 * The main thread of each renderer of this process's Chromium: where a page's script, style,
 * layout and paint run.
 */
export function rendererThreads(): WatchedThread[] {
  return descendants(process.pid)
    .filter(({ cmdline }) => cmdline.includes('--type=renderer'))
    .map(({ pid }) => mainThread(pid, 'renderer'));
}

/** Cumulative time on a core and waits for one (ms) of each watched thread at one instant (ms since the epoch). */
interface Sample {
  at: number;
  ran: number[];
  waited: number[];
}

// Runs in a worker thread, so that its samples keep coming while the app's event loop is busy.
const SAMPLER = `
const { parentPort, workerData } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const { performance } = require('node:perf_hooks');
const { readlinkSync } = require('node:fs');
const { setPriority } = require('node:os');
// Ahead of the threads it watches (where allowed: root), so that its samples come every interval
// however loaded the machine is; otherwise they come when they can and the estimate counts less.
try { setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), -20); } catch {}
const samples = [];
const read = (path) => { try { return readFileSync(path, 'utf8').split(' ').map((ns) => Number(ns) / 1e6); } catch { return [NaN, NaN]; } };
const take = () => {
  const at = performance.timeOrigin + performance.now();
  const fields = workerData.paths.map(read);
  samples.push({ at, ran: fields.map((f) => f[0]), waited: fields.map((f) => f[1]) });
};
take();
const timer = setInterval(take, workerData.intervalMs);
parentPort.once('message', () => { clearInterval(timer); take(); parentPort.postMessage(samples); });
`;

/**
 * Samples, every `intervalMs` in a worker thread, how long each watched thread has waited for a
 * core, so that the time a page spent descheduled can be told apart from the time it worked.
 *
 * @example
 * const sampler = RunDelaySampler.start(chromiumThreads());
 * // … the pages …
 * const waits = await sampler.stop();
 * waits.within(start, end); // ms the watched threads waited for a core between the two instants
 */
export class RunDelaySampler {
  private constructor(
    private readonly worker: Worker,
    readonly threads: WatchedThread[],
  ) {}

  static start(threads: WatchedThread[], intervalMs = 2): RunDelaySampler {
    const worker = new Worker(SAMPLER, { eval: true, workerData: { paths: threads.map((t) => t.schedstat), intervalMs } });
    return new RunDelaySampler(worker, threads);
  }

  /** Ends sampling; the waits recorded, per span of time. */
  async stop(): Promise<RunDelays> {
    const samples = new Promise<Sample[]>((resolve, reject) => {
      this.worker.once('message', resolve);
      this.worker.once('error', reject);
    });
    this.worker.postMessage('stop');
    const recorded = await samples;
    await this.worker.terminate();
    return new RunDelays(this.threads, recorded);
  }
}

/** The waits a {@link RunDelaySampler} recorded. */
export class RunDelays {
  constructor(
    readonly threads: WatchedThread[],
    private readonly samples: Sample[],
  ) {}

  /**
   * The time (ms) the watched threads waited for a core (or, with `ran`, ran on one) between two
   * instants (ms since the epoch), per label, counted only between the first sample at or after
   * `from` and the last at or before `to`: never more than what fell inside the span.
   */
  within(from: number, to: number, field: 'waited' | 'ran' = 'waited'): Record<string, number> {
    const first = this.samples.find((s) => s.at >= from);
    const last = [...this.samples].reverse().find((s) => s.at <= to);
    const times: Record<string, number> = {};
    for (const [i, thread] of this.threads.entries()) {
      const time = first && last && last.at > first.at ? last[field][i] - first[field][i] : 0;
      times[thread.label] = (times[thread.label] ?? 0) + (Number.isFinite(time) ? time : 0);
    }
    return times;
  }

  /** The widest gap between two samples, ms: the sampler's own resolution under load. */
  widestGap(): number {
    let widest = 0;
    for (let i = 1; i < this.samples.length; i++) widest = Math.max(widest, this.samples[i].at - this.samples[i - 1].at);
    return widest;
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
