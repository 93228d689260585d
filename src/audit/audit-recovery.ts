import { type AuditCircuit } from './audit-circuit';
import { type AuditRecord } from './audit-entry';
import { type BufferedEntry } from './audit-buffer';
import { type AuditFallback, lineContext } from './audit-fallback';
import { AUDIT_EVENTS, type ConsoleSink, type WriteFailureReport } from './sinks';

/** What the recovery flush needs of the service it works for. */
export interface RecoveryHost {
  /** Inserts a batch (quarantining what the database refuses for its content); rejects on failure. */
  insert(records: AuditRecord[]): Promise<void>;
  /** Tries the database without writing (a zero-row INSERT); rejects on failure. */
  probe(): Promise<void>;
  /** A failed attempt: the service goes down (and parks what waited for the writer). */
  failed(error: unknown, attempt: WriteFailureReport['attempt'], first: AuditRecord | undefined, entries: number): void;
  /** A try committed: the service is up and the writer may start again. */
  up(): void;
  /** True once shutdown has begun: a spool replay stops after its batch. */
  stopping(): boolean;
  /** `Date.now()` after which no flush write may start (shutdown's deadline; Infinity before). */
  deadline(): number;
}

/** Entries of the half-open try from the ring: a small batch decides as well as a full one, sooner. */
const FIRST_TRY_ENTRIES = 10;
/** Ring batches the flush has in flight at once, once the try has committed. */
const PIPELINE_DEPTH = 2;

/**
 * The recovery flush: writes the ring oldest first, two batches at a time, then replays the spool,
 * one batch at a time; in `half-open` the first batch (of at most 10 entries) is the try that
 * decides, or, with nothing to write, a probe of the database, so that recovery never waits for
 * traffic. When one of two ring batches fails, the one that committed leaves the ring and the
 * other stays: nothing is written twice or lost. Only one runs at a time:
 * asking while one runs joins it.
 *
 * @example
 * const recovery = new AuditRecovery(fallback, circuit, consoleSink, 500, host);
 * await recovery.flush();
 */
export class AuditRecovery {
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly fallback: AuditFallback,
    private readonly circuit: AuditCircuit,
    private readonly console: ConsoleSink,
    private readonly batchSize: number,
    private readonly host: RecoveryHost,
  ) {}

  /** The flush under way, if any. */
  get running(): Promise<void> | undefined {
    return this.flushing;
  }

  /** `sweep`: replay the spool even when it counts no entries (a replay adopts abandoned segments). */
  flush(options: { withSpool?: boolean; sweep?: boolean } = {}): Promise<void> {
    this.flushing ??= this.run(options.withSpool ?? true, options.sweep ?? false).finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /**
   * Entries parked while the first try was in flight land behind it (in the ring, or in a new
   * spool segment, once their append has settled), so it goes round until a pass finds nothing
   * left to write. A spool fault that is not a failed insert is a failed attempt too.
   */
  private async run(withSpool: boolean, sweep: boolean): Promise<void> {
    const live = () => (this.circuit.state === 'up' || this.circuit.state === 'half-open') && Date.now() < this.host.deadline();
    const spool = withSpool ? this.fallback.spool : null;
    let progress = true;
    while (progress && live()) {
      progress = false;
      while (live() && this.fallback.buffer.size > 0) {
        // The half-open try is small: on a cold connection it decides, and the full batches follow.
        const size = this.circuit.state === 'half-open' ? Math.min(FIRST_TRY_ENTRIES, this.batchSize) : PIPELINE_DEPTH * this.batchSize;
        const batch = this.fallback.checkout(size);
        const parts: BufferedEntry[][] = [];
        for (let i = 0; i < batch.length; i += this.batchSize) parts.push(batch.slice(i, i + this.batchSize));
        const written = await Promise.all(parts.map((part) => this.attempt(part.map((b) => b.record))));
        const failure = written.find((w) => w !== true);
        if (failure === undefined) {
          if (this.circuit.state === 'half-open') this.host.up();
          this.circuit.count('flushed', this.fallback.committed());
          progress = true;
          continue;
        }
        const committed = new Set(parts.flatMap((part, i) => (written[i] === true ? part.map((b) => b.seq) : [])));
        this.circuit.count('flushed', this.fallback.partlyCommitted(committed));
        this.reportFailed(failure.error, failure.records);
        return;
      }
      if (spool && (spool.entries > 0 || sweep) && live()) {
        sweep = false;
        const before = spool.entries;
        let insertFailed = false;
        try {
          const replayed = await this.fallback.replay(
            spool,
            async (records) => {
              if (this.host.stopping()) throw new Error('spool replay stopped for shutdown');
              insertFailed = !(await this.write(records));
              if (insertFailed) throw new Error('spool replay stopped');
            },
            this.batchSize,
          );
          this.circuit.count('flushed', replayed);
        } catch (error) {
          // A failed insert has been reported by write(); the segment stays for the next recovery.
          if (!insertFailed && !this.host.stopping()) this.host.failed(error, this.attemptKind(), undefined, 0);
          return;
        }
        progress ||= spool.entries < before;
      }
      if (!progress && spool && this.fallback.appending > 0 && live()) {
        await this.fallback.appendsSettled();
        progress = true;
      }
    }
    if (this.circuit.state === 'half-open' && live()) {
      if (!(await this.probe())) return;
      // Entries parked while the probe was in flight are flushed now that the service is up.
      if (this.fallback.buffer.size > 0 || this.fallback.appending > 0 || (spool?.entries ?? 0) > 0) return this.run(withSpool, false);
    }
    if (this.fallback.buffer.size === 0 && (spool?.entries ?? 0) === 0) this.circuit.recovered();
  }

  /** One flush insert; on failure the service is down again and the batch stays where it was. */
  private async write(records: AuditRecord[]): Promise<boolean> {
    const written = await this.attempt(records);
    if (written !== true) {
      this.reportFailed(written.error, written.records);
      return false;
    }
    if (this.circuit.state === 'half-open') this.host.up();
    return true;
  }

  /** One insert: true once committed, else what failed (reported by the caller, once per pass). */
  private async attempt(records: AuditRecord[]): Promise<true | { error: unknown; records: AuditRecord[] }> {
    try {
      await this.host.insert(records);
      return true;
    } catch (error) {
      return { error, records };
    }
  }

  /** A failed flush insert: the service goes down again, with an `audit.flush_failed` line unless it was the half-open try. */
  private reportFailed(error: unknown, records: AuditRecord[]): void {
    const attempt = this.attemptKind();
    this.host.failed(error, attempt, records[0], records.length);
    if (attempt === 'flush') {
      this.console.emit(AUDIT_EVENTS.flushFailed, 'error', {
        ...lineContext(records[0]),
        error: this.circuit.lastError,
        remaining: this.fallback.buffer.size,
      });
    }
  }

  /** Nothing was written to decide the half-open try: a probe does, and the service goes up on success. */
  private async probe(): Promise<boolean> {
    try {
      await this.host.probe();
    } catch (error) {
      this.host.failed(error, 'probe', undefined, 0);
      return false;
    }
    if (this.circuit.state === 'half-open') this.host.up();
    return true;
  }

  private attemptKind(): 'probe' | 'flush' {
    return this.circuit.state === 'half-open' ? 'probe' : 'flush';
  }
}
