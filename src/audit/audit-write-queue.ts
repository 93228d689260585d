import { type AuditRecord } from './audit-entry';
import { type AuditWriter } from './audit.writer';

/** An entry on its way to the database, and how to tell its caller it has a home. */
export interface PendingEntry {
  record: AuditRecord;
  bytes: number;
  settle: () => void;
}

/** Batches the writer may have in flight at once. */
const MAX_CONCURRENT_BATCHES = 2;

/**
 * Group commit: entries logged in the same turn of the event loop, or while a write is in flight,
 * share one multi-row INSERT of up to `batchSize`. A second write starts only when a full batch
 * waits, so light traffic gathers into fewer, larger transactions and bulk loads keep two going.
 *
 * @example
 * const queue = new AuditWriteQueue(writer, 500, () => state === 'up', (error, batch) => park(batch));
 * queue.push({ record, bytes, settle });
 */
export class AuditWriteQueue {
  private queue: PendingEntry[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private scheduled = false;

  constructor(
    private readonly writer: AuditWriter,
    private readonly batchSize: number,
    /** Whether writes may go to the database now. */
    private readonly open: () => boolean,
    private readonly onFailure: (error: unknown, batch: PendingEntry[]) => void,
  ) {}

  push(entry: PendingEntry): void {
    this.queue.push(entry);
    this.schedule();
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
    return queued;
  }

  /** Counts `write` as in flight until it settles (the half-open try is one too). */
  track(write: Promise<void>): void {
    this.inFlight.add(write);
    void write.finally(() => {
      this.inFlight.delete(write);
      this.pump();
    });
  }

  /** Resolves once nothing is queued or in flight. */
  async settle(): Promise<void> {
    while (this.queue.length > 0 || this.inFlight.size > 0) {
      this.pump();
      await Promise.allSettled([...this.inFlight]);
      if (!this.open() && this.inFlight.size === 0) return;
    }
  }

  private pump(): void {
    const room = () => this.inFlight.size === 0 || (this.inFlight.size < MAX_CONCURRENT_BATCHES && this.queue.length >= this.batchSize);
    while (this.open() && this.queue.length > 0 && room()) {
      const batch = this.queue.splice(0, this.batchSize);
      this.track(
        this.writer.insert(batch.map((p) => p.record)).then(
          () => batch.forEach((p) => p.settle()),
          (error: unknown) => this.onFailure(error, batch),
        ),
      );
    }
  }
}
