import { resolve } from 'node:path';
import { stallTolerantDeadline } from '../stall-tolerant-deadline';
import { DiskTimeoutError } from './spool-errors';

/**
 * File calls on one disk at once, at most, hung or not: so a disk never holds more than half of
 * libuv's four threads, which `dns.lookup`, crypto and every other file call share.
 *
 * @example
 * DISK_CALLS_IN_FLIGHT; // 2
 */
export const DISK_CALLS_IN_FLIGHT = 2;

/**
 * What one user of a gate hears of its own calls: `onTimeout` when one is given up at its deadline
 * (once per hung call), `onLate` with the value of one that returned after it.
 *
 * @example
 * let given = 0;
 * const hooks: DiskCallHooks<string[]> = { onTimeout: () => (given += 1), onLate: (names) => console.log(names) };
 */
export interface DiskCallHooks<T> {
  onTimeout?: () => void;
  onLate?: (value: T) => void;
}

interface Waiter {
  begin: () => void;
  refuse: () => void;
}

/**
 * The one gate of a disk: at most {@link DISK_CALLS_IN_FLIGHT} calls on it at once (the others wait
 * their turn within their deadline), none waited for longer than its `timeoutMs` (an answer that
 * came while the event loop was stalled is taken, see {@link stallTolerantDeadline}), and once one
 * has hung past its deadline, no new call reaches the disk (each rejects at once, `stalled`) until
 * it returns. A close asked for meanwhile is put off until then (it resolves at once).
 *
 * @example
 * const gate = new DiskGate();
 * await gate.run('fsync', 2000, () => handle.sync()); // rejects with AUDIT_DISK_TIMEOUT after 2 s of a hung disk
 */
export class DiskGate {
  private inFlight = 0;
  private readonly hung = new Set<Promise<unknown>>();
  private readonly queue: Waiter[] = [];
  private deferred: (() => void)[] = [];

  /** `onIdle`: called whenever nothing is left on the disk, waiting for it, or put off. */
  constructor(private readonly onIdle: () => void = () => undefined) {}

  /** True while a call given up at its deadline still has not returned. */
  get stalled(): boolean {
    return this.hung.size > 0;
  }

  /** Runs `call` once there is room on the disk; rejects past `timeoutMs` from now, waiting included. */
  run<T>(operation: string, timeoutMs: number, call: () => Promise<T>, hooks: DiskCallHooks<T> = {}): Promise<T> {
    if (this.stalled) return Promise.reject(new DiskTimeoutError(operation, timeoutMs, true));
    return new Promise<T>((resolvePromise, reject) => {
      let pending: Promise<T> | undefined;
      const waiter: Waiter = {
        begin: () => {
          this.inFlight += 1;
          const started = (async () => call())();
          pending = started;
          const done = () => {
            this.inFlight -= 1;
            this.next();
          };
          started.then(done, done);
          started.then(
            (value) => {
              cancel();
              resolvePromise(value);
            },
            (error: unknown) => {
              cancel();
              reject(error);
            },
          );
        },
        refuse: () => {
          cancel();
          reject(new DiskTimeoutError(operation, timeoutMs, true));
        },
      };
      const cancel = stallTolerantDeadline(timeoutMs, () => {
        if (!pending) {
          this.queue.splice(this.queue.indexOf(waiter), 1);
          reject(new DiskTimeoutError(operation, timeoutMs, true));
          this.checkIdle();
          return;
        }
        hooks.onTimeout?.();
        const late: Promise<unknown> = pending.then(
          (value) => {
            this.returned(late);
            hooks.onLate?.(value);
          },
          () => this.returned(late),
        );
        this.hung.add(late);
        // The disk hung: what waits for it is not handed to it.
        for (const queued of this.queue.splice(0)) queued.refuse();
        reject(new DiskTimeoutError(operation, timeoutMs));
      });
      this.queue.push(waiter);
      this.next();
    });
  }

  /** A close while stalled waits (unawaited) for the stall to end: it must not join the hung calls. */
  close(timeoutMs: number, call: () => Promise<void>, hooks: DiskCallHooks<void> = {}): Promise<void> {
    if (!this.stalled) return this.run('close', timeoutMs, call, hooks);
    this.deferred.push(() => void this.run('close', timeoutMs, call, hooks).catch(() => undefined));
    return Promise.resolve();
  }

  private next(): void {
    while (!this.stalled && this.inFlight < DISK_CALLS_IN_FLIGHT && this.queue.length > 0) {
      (this.queue.shift() as Waiter).begin();
    }
    this.checkIdle();
  }

  private returned(late: Promise<unknown>): void {
    this.hung.delete(late);
    if (!this.stalled) for (const close of this.deferred.splice(0)) close();
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.inFlight === 0 && this.hung.size === 0 && this.queue.length === 0 && this.deferred.length === 0) this.onIdle();
  }
}

const gates = new Map<string, DiskGate>();

/**
 * The gate of the disk under `dir`, one per directory in the process (libuv's thread pool is the
 * process's): the spool, the quarantine and the chain memory under one `spoolDir` all go through
 * it. A gate with nothing on its disk is forgotten (a new one is the same), so ask for it at each call.
 *
 * @example
 * await diskGate('/var/spool/audit').run('readdir', 2000, () => readdir('/var/spool/audit'));
 */
export function diskGate(dir: string): DiskGate {
  const key = resolve(dir);
  let gate = gates.get(key);
  if (!gate) {
    const made = new DiskGate(() => {
      if (gates.get(key) === made) gates.delete(key);
    });
    gates.set(key, made);
    gate = made;
  }
  return gate;
}
