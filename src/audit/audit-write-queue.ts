import { type AuditRecord } from './audit-entry';
import { writeTimeoutError } from './audit.writer';
import { stallTolerantDeadline } from './stall-tolerant-deadline';

/** An entry on its way to the database, and how to tell its caller it has a home. */
export interface PendingEntry {
  record: AuditRecord;
  bytes: number;
  /** Order of `log()` calls; the ring keeps entries in this order. */
  seq: number;
  /** `Date.now()` by which the entry must be committed (its `log()` plus `writeTimeoutMs`). */
  deadline: number;
  settle: () => void;
}

/** Code of the failure raised when an entry finds the writer's memory bound full. */
export const BACKLOG_FULL_CODE = 'AUDIT_BACKLOG_FULL';

/** Batches the writer may have in flight at once (an A/B of 2 against 4 in docs/PERFORMANCE.md). */
export const MAX_CONCURRENT_BATCHES = 4;
/** With one being split, which holds no lane: one more (the writer's connections stay bounded). */
const MAX_IN_FLIGHT = MAX_CONCURRENT_BATCHES + 1;

/**
 * Group commit: entries logged in the same turn of the event loop, or while a write is in flight,
 * share one multi-row INSERT. A further write starts only when a full batch waits, so light
 * traffic gathers into fewer, larger transactions and bulk loads keep up to
 * {@link MAX_CONCURRENT_BATCHES} going. A full batch is `batchSize` entries, or the `maxEntries`
 * bound shared among that many batches when that is less (500 and 1000 by default: 250), so
 * that the bound leaves room for the whole pipeline; no batch holds more.
 * With a `lingerMs` (async mode, where no caller waits for its row), a batch short of full
 * starts only once its oldest entry has waited that long, so more entries share its commit; a
 * full batch, and `settle()`, start at once. `lingerMs` must be below `timeoutMs`: the wait counts
 * against each entry's deadline.
 * A batch being split around a refused entry gives up its lane: entries logged meanwhile do not
 * wait for the split.
 * What it holds (queued plus in flight) is bounded by `maxEntries` and `maxBytes`: `push` refuses
 * past them. Each batch must commit by the deadline of its oldest entry, so time spent queued
 * counts against the write timeout.
 *
 * @example
 * const queue = new AuditWriteQueue((records, deadline, splitting) => insert(records, deadline, splitting),
 *   { batchSize: 500, maxEntries: 1000, maxBytes: 8 << 20, timeoutMs: 2000 }, () => state === 'up', (error, batch) => park(batch));
 * if (!queue.push({ record, bytes, seq, deadline, settle })) park([entry]);
 */
export class AuditWriteQueue {
  private queue: PendingEntry[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  /** Writes in flight that hold a lane: all but those being split. */
  private lanes = 0;
  private scheduled = false;
  private lingering: NodeJS.Timeout | undefined;
  private entries = 0;
  private bytes = 0;

  constructor(
    /**
     * Writes a batch; rejects unless it committed by `deadline`. Calls `splitting` when the
     * database refused an entry of it and the batch is being split (under a budget of its own):
     * from then on it no longer holds one of the writer's lanes.
     */
    private readonly insert: (records: AuditRecord[], deadline: number, splitting: () => void) => Promise<void>,
    private readonly limits: { batchSize: number; maxEntries: number; maxBytes: number; timeoutMs: number; lingerMs?: number },
    /** Whether writes may go to the database now. */
    private readonly open: () => boolean,
    private readonly onFailure: (error: unknown, batch: PendingEntry[]) => void,
    /** A batch being split has passed the deadline of its oldest entry; `written` settles when the split ends. */
    private readonly onOverdue: (batch: PendingEntry[], written: Promise<void>) => void = () => undefined,
  ) {}

  /** Entries queued or in flight. */
  get pending(): number {
    return this.entries;
  }

  /** Queues `entry` for the next batch; false (and nothing queued) when the bound is full. */
  push(entry: PendingEntry): boolean {
    if (this.entries + 1 > this.limits.maxEntries || this.bytes + entry.bytes > this.limits.maxBytes) return false;
    this.hold([entry]);
    this.queue.push(entry);
    // A short batch lingering on its timer starts when the timer fires: a turn of the event loop would find it waiting still.
    if (this.lingering === undefined || this.queue.length >= this.fullBatch()) this.schedule();
    return true;
  }

  /** Starts waiting batches on the next turn of the event loop. */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** Takes back every entry not yet sent. */
  takeQueued(): PendingEntry[] {
    const queued = this.queue;
    this.queue = [];
    clearTimeout(this.lingering);
    this.lingering = undefined;
    this.release(queued);
    return queued;
  }

  /** Writes `batch` outside the queue (the half-open try), counted as pending until it settles. */
  send(batch: PendingEntry[], onCommitted: () => void, onFailed: (error: unknown) => void): void {
    this.hold(batch);
    this.track(
      this.write(batch).then(
        () => {
          this.release(batch);
          batch.forEach((p) => p.settle());
          onCommitted();
        },
        (error: unknown) => {
          this.release(batch);
          onFailed(error);
        },
      ),
    );
  }

  /** Resolves once nothing is queued or in flight. */
  async settle(): Promise<void> {
    while (this.queue.length > 0 || this.inFlight.size > 0) {
      this.pump(true);
      await Promise.allSettled([...this.inFlight]);
      if (!this.open() && this.inFlight.size === 0) return;
    }
  }

  /**
   * Starts every entry queued now without waiting for the linger, and resolves once they and the
   * writes in flight now have settled: committed, or handed to `onFailure`. Entries queued later
   * are not waited for; each write is bounded by its oldest entry's deadline.
   */
  async flush(): Promise<void> {
    const newest = this.queue[this.queue.length - 1];
    const writes = new Set(this.inFlight);
    while (newest !== undefined && this.queue.includes(newest) && this.open()) {
      this.pump(true);
      this.inFlight.forEach((w) => writes.add(w));
      if (!this.queue.includes(newest) || this.inFlight.size === 0) break;
      await Promise.race([...this.inFlight].map((w) => w.catch(() => undefined)));
    }
    await Promise.allSettled(writes);
  }

  /** `now`: start what may start without waiting for the linger (shutdown's drain, or the linger's end). */
  private pump(now = false): void {
    const full = this.fullBatch();
    const room = () =>
      this.inFlight.size < MAX_IN_FLIGHT && (this.lanes === 0 || (this.lanes < MAX_CONCURRENT_BATCHES && this.queue.length >= full));
    while (this.open() && this.queue.length > 0 && room()) {
      if (!now && this.queue.length < full && this.linger()) return;
      const batch = this.queue.splice(0, full);
      this.track(
        this.write(batch).then(
          () => {
            this.release(batch);
            batch.forEach((p) => p.settle());
          },
          (error: unknown) => {
            this.release(batch);
            this.onFailure(error, batch);
          },
        ),
      );
    }
  }

  /** Entries of a full batch: `batchSize`, or the `maxEntries` bound shared among the batches in flight when that is less. */
  private fullBatch(): number {
    const { batchSize, maxEntries } = this.limits;
    return Math.min(batchSize, Math.ceil(maxEntries / MAX_CONCURRENT_BATCHES));
  }

  /** True (and a wake-up set) while the oldest queued entry has waited less than `lingerMs`. */
  private linger(): boolean {
    const { lingerMs = 0, timeoutMs } = this.limits;
    if (lingerMs <= 0) return false;
    // Capped and ended by the timer, not by the clock: a clock set back cannot stretch the wait.
    const wait = Math.min(lingerMs, this.queue[0].deadline - timeoutMs + lingerMs - Date.now());
    if (wait <= 0) return false;
    this.lingering ??= setTimeout(() => {
      this.lingering = undefined;
      this.pump(true);
    }, wait);
    return true;
  }

  /** The batch's INSERT, bounded by the deadline of its oldest entry; it holds a lane until it settles or is split. */
  private write(batch: PendingEntry[]): Promise<void> {
    const deadline = Math.min(...batch.map((p) => p.deadline));
    if (deadline <= Date.now()) return Promise.reject(writeTimeoutError(this.limits.timeoutMs));
    this.lanes += 1;
    let held = true;
    let overdue: (() => void) | undefined;
    const free = () => {
      overdue?.();
      if (!held) return;
      held = false;
      this.lanes -= 1;
    };
    const written: Promise<void> = this.insert(
      batch.map((p) => p.record),
      deadline,
      () => {
        free();
        this.schedule();
        overdue = stallTolerantDeadline(Math.max(0, deadline - Date.now()), () => this.onOverdue(batch, written));
      },
    ).finally(free);
    return written;
  }

  private track(write: Promise<void>): void {
    this.inFlight.add(write);
    void write.finally(() => {
      this.inFlight.delete(write);
      this.pump();
    });
  }

  private hold(batch: PendingEntry[]): void {
    for (const p of batch) {
      this.entries += 1;
      this.bytes += p.bytes;
    }
  }

  private release(batch: PendingEntry[]): void {
    for (const p of batch) {
      this.entries -= 1;
      this.bytes -= p.bytes;
    }
  }
}
