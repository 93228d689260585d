// Self-contained (no imports): the process tests run this file alone in a child process.

/** The `event` of the line that says stderr's reader is behind (one of `AUDIT_EVENTS`). */
export const STDERR_BEHIND_EVENT = 'audit.stderr_behind' as const;

/** Most bytes of lines that wait in the process's memory for stderr, by default (as `bufferMaxBytes`'s default). */
export const STDERR_QUEUE_MAX_BYTES = 8 * 1024 * 1024;

const ignore = (): void => undefined;

/** One state for the process, as its stderr is one. */
const queue = {
  /** Lines not written since start: more than their bound already waited in memory, or stderr refused them. */
  dropped: 0,
  /** Of those past the bound, the ones no `audit.stderr_behind` line has counted yet. */
  unsaid: 0,
  /**
   * Settles with stderr's answer to the newest line written (taken, or refused); null once it took
   * it. A refused one stays until a later line is taken: till then, lines are not taken.
   */
  newest: null as Promise<boolean> | null,
  /** A line waited for past its bound has still not been taken: the reader is stuck. */
  stuck: false,
};

/**
 * Writes one line to the process's stderr: a single write, newline-terminated, so that the lines
 * of one process never interleave (processes sharing one pipe may: docs/FAILURES.md). Never
 * through `console`: Sentry's Console integration (on by default) records every `console.error`
 * call as a breadcrumb of the app's next events, and an audit line (an entry, its `changes`, a
 * person's values) must not travel there. A line stderr refuses (EPIPE: its reader gone; ENOSPC:
 * a full disk) is not taken: it counts in `droppedLines`, and {@link stderrLinesTaken} answers
 * false until stderr takes a later line; the app goes on.
 *
 * A pipe whose reader is behind takes nothing more once full: Node keeps what follows in the
 * process's memory until the reader catches up. At most `maxQueuedBytes` of lines (plus this one)
 * wait there: past that the line is not written, and counted; one `audit.stderr_behind` line says
 * how many were not, before the next line written or once stderr has taken what waited, whichever
 * comes first. Returns false for a line not written.
 *
 * @example
 * writeStderrLine(JSON.stringify({ event: 'audit.buffered', auditId }));
 */
export function writeStderrLine(line: string, maxQueuedBytes = STDERR_QUEUE_MAX_BYTES): boolean {
  if (process.stderr.writableLength > maxQueuedBytes) {
    queue.dropped += 1;
    queue.unsaid += 1;
    return false;
  }
  sayDropped();
  write(`${line}\n`, true);
  return true;
}

/** The lines not written that no `audit.stderr_behind` line has counted yet: one line says how many. */
function sayDropped(): void {
  if (queue.unsaid === 0) return;
  const droppedLines = queue.unsaid;
  queue.unsaid = 0;
  writeStderrBehind({ reason: 'queue_full', droppedLines });
}

/**
 * Writes one `audit.stderr_behind` line with `fields`, whatever waits before it: the line that says
 * stderr is behind.
 *
 * @example
 * writeStderrBehind({ reason: 'shutdown', queuedBytes: process.stderr.writableLength });
 */
export function writeStderrBehind(fields: Record<string, string | number>): void {
  write(`${JSON.stringify({ timestamp: new Date().toISOString(), level: 'error', event: STDERR_BEHIND_EVENT, ...fields })}\n`, false);
}

/**
 * True once stderr has taken (handed to the kernel: the pipe, the file) every line written so far,
 * false when it has not within `timeoutMs`, or refused the newest (and no later one was taken
 * since): at once when stderr has answered every line. While a line waited for past its bound is
 * still not taken, later calls answer false at once: a stuck reader costs one wait, not one per
 * line. With `always`, waits its bound even then (a last wait, at shutdown).
 *
 * @example
 * const taken: boolean = await stderrLinesTaken(2000); // false: a line still waits in memory
 */
export function stderrLinesTaken(timeoutMs: number, always = false): boolean | Promise<boolean> {
  const newest = queue.newest;
  if (newest === null) return true;
  if (queue.stuck && !always) return false;
  return new Promise<boolean>((resolve) => {
    let verdict: NodeJS.Immediate | undefined;
    // As stallTolerantDeadline: the verdict waits one more turn, so a line taken while the process stalled counts.
    const timer = setTimeout(
      () =>
        (verdict = setImmediate(() => {
          if (!queue.stuck) {
            queue.stuck = true;
            void newest.then(() => (queue.stuck = false));
          }
          resolve(false);
        })),
      timeoutMs,
    ).unref();
    void newest.then((taken) => {
      clearTimeout(timer);
      if (verdict) clearImmediate(verdict);
      resolve(taken);
    });
  });
}

/**
 * What stderr has not taken: bytes waiting in the process's memory now (the app's own writes
 * included) and lines not written since start.
 *
 * @example
 * const { queuedBytes, droppedLines } = stderrBacklog();
 */
export function stderrBacklog(): { queuedBytes: number; droppedLines: number } {
  return { queuedBytes: process.stderr.writableLength, droppedLines: queue.dropped };
}

/** Writes `text`, the newest line; stderr's answer to it settles {@link queue.newest}. A refused `line` (an audit line) is counted. */
function write(text: string, line: boolean): void {
  let settle!: (taken: boolean) => void;
  const newest = new Promise<boolean>((resolve) => (settle = resolve));
  queue.newest = newest;
  // Every line waits for stderr's answer: a write handed to the kernel at once may still be refused (a file on a full disk).
  process.stderr.write(text, (error) => {
    if (error) {
      if (line) queue.dropped += 1;
      // The stream emits the error after this callback: with no listener it would end the process.
      if (process.stderr.listenerCount('error') === 0) process.stderr.once('error', ignore);
    }
    settle(!error);
  });
  void newest.then((taken) => {
    if (queue.newest !== newest || !taken) return;
    queue.newest = null;
    sayDropped();
  });
}
