import { type BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { type Repository } from 'typeorm';
import { AuditBuffer, type BufferedEntry } from './audit-buffer';
import { type AuditEntry, AuditEntryNormalizer, type AuditRecord } from './audit-entry';
import { type AuditLog } from './audit-log.entity';
import { type ResolvedAuditOptions } from './audit-options';
import { AUDIT_OPTIONS, AUDIT_REPOSITORY } from './audit.constants';
import { AuditWriter } from './audit.writer';
import { connectionSecrets, type SanitizedDbError, sanitizeDbError } from './db-error';
import { AUDIT_EVENTS, AuditReporter, ConsoleSink, type WriteFailureReport } from './sinks';

/** `up`: writing to the database; `down`: buffering; `half-open`: one entry is trying the database. */
export type AuditState = 'up' | 'down' | 'half-open';

/** What the health indicator and operators see. */
export interface AuditStatus {
  state: AuditState;
  buffered: number;
  bufferedBytes: number;
  dropped: number;
  downSince: string | null;
  lastError: SanitizedDbError | null;
}

interface Pending {
  record: AuditRecord;
  bytes: number;
  settle: () => void;
}

/** Batches the writer may have in flight at once while up. */
const MAX_CONCURRENT_BATCHES = 2;

/**
 * Records audit entries and keeps them safe when the database is not. `log()` never rejects and,
 * in async mode, nobody waits on it. While up, concurrent entries share one multi-row INSERT.
 * The first failed or timed-out write turns the service `down`: entries then go to the ring
 * buffer and to one stderr line each, and Sentry hears of every failed attempt. After a cool-down
 * (exponential backoff with jitter) the next entry tries the database (`half-open`), or, when no
 * entry comes, the oldest buffered batch does; when the try commits, the service is `up` again and
 * flushes the buffer in batches, exactly once per entry.
 *
 * @example
 * await auditService.log({ action: 'nda_created', entityType: 'NDA', entityId: id, userId });
 */
@Injectable()
export class AuditService implements BeforeApplicationShutdown {
  private readonly logger = new Logger('AuditModule');
  private readonly normalizer: AuditEntryNormalizer;
  private readonly writer: AuditWriter;
  private readonly secrets: string[];
  private state: AuditState = 'up';
  private queue: Pending[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private pumpScheduled = false;
  private flushing: Promise<void> | undefined;
  private seq = 0;
  private consecutiveFailures = 0;
  private retryAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private downSince: Date | null = null;
  private lastError: SanitizedDbError | null = null;
  private dropped = 0;
  private outage = { failedAttempts: 0, dropped: 0, flushed: 0 };

  constructor(
    @Inject(AUDIT_OPTIONS) private readonly options: ResolvedAuditOptions,
    @Inject(AUDIT_REPOSITORY) repository: Repository<AuditLog>,
    @Inject(AuditBuffer) private readonly buffer: AuditBuffer,
    @Inject(AuditReporter) private readonly reporter: AuditReporter,
    private readonly console: ConsoleSink,
  ) {
    this.normalizer = new AuditEntryNormalizer(options.redactKeys, options.maxEntryBytes);
    this.writer = new AuditWriter(repository, options.writeTimeoutMs);
    this.secrets = connectionSecrets(repository.manager?.connection?.options);
  }

  /** False from the first failed write until a half-open try commits. */
  get dbAvailable(): boolean {
    return this.state === 'up';
  }

  /**
   * Records one entry. Resolves once the entry has a home (committed, or buffered with its stderr
   * line); never rejects.
   */
  log(entry: AuditEntry): Promise<void> {
    return new Promise<void>((settle) => {
      try {
        const { record, bytes } = this.normalizer.normalize(entry);
        this.route({ record, bytes, settle });
      } catch (error) {
        // Unreachable by design (normalize never throws); kept so log() can honour "never rejects".
        this.console.emit(AUDIT_EVENTS.dropped, 'error', { reason: 'normalize_failed', error: String(error) });
        settle();
      }
    });
  }

  /** A snapshot for health checks and diagnostics. */
  status(): AuditStatus {
    return {
      state: this.state,
      buffered: this.buffer.size,
      bufferedBytes: this.buffer.bytes,
      dropped: this.dropped,
      downSince: this.downSince?.toISOString() ?? null,
      lastError: this.lastError,
    };
  }

  /** Drains the writer queue and the buffer to the database while it can; says what it could not. */
  async beforeApplicationShutdown(): Promise<void> {
    clearTimeout(this.retryTimer);
    await this.settleWrites();
    if (this.buffer.size > 0) {
      if (this.state !== 'up') this.state = 'up';
      await this.flush();
      await this.settleWrites();
    }
    let entry: BufferedEntry | undefined;
    while ((entry = this.buffer.shift()) !== undefined) {
      this.dropped += 1;
      this.console.emit(AUDIT_EVENTS.dropped, 'error', { ...context(entry.record), reason: 'shutdown', error: this.lastError });
    }
  }

  private route(pending: Pending): void {
    if (this.state === 'up') {
      this.queue.push(pending);
      this.schedulePump();
    } else if (this.state === 'down' && Date.now() >= this.retryAt) {
      this.probe(pending);
    } else {
      this.keep(pending);
    }
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    // Entries logged in the same turn of the event loop share one INSERT.
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.state === 'up' && this.queue.length > 0 && this.inFlight.size < MAX_CONCURRENT_BATCHES) {
      const batch = this.queue.splice(0, this.options.batchSize);
      this.track(
        this.writer.insert(batch.map((p) => p.record)).then(
          () => batch.forEach((p) => p.settle()),
          (error: unknown) => {
            this.failed(error, 'write', batch[0].record, batch.length);
            batch.forEach((p) => this.keep(p));
          },
        ),
      );
    }
  }

  private probe(pending: Pending): void {
    this.state = 'half-open';
    this.track(
      this.writer.insert([pending.record]).then(
        () => {
          pending.settle();
          this.up();
          void this.flush();
        },
        (error: unknown) => {
          this.failed(error, 'probe', pending.record, 1);
          this.keep(pending);
        },
      ),
    );
  }

  private flush(): Promise<void> {
    this.flushing ??= this.runFlush().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /** With no new entry to try the database, the oldest buffered batch is the half-open try. */
  private retryBuffered(): void {
    if (this.state !== 'down' || this.buffer.size === 0) return;
    this.state = 'half-open';
    void this.flush();
  }

  /** Writes the buffer oldest first; in `half-open` its first batch is the try that decides. */
  private async runFlush(): Promise<void> {
    while ((this.state === 'up' || this.state === 'half-open') && this.buffer.size > 0) {
      const batch = this.buffer.peekMany(this.options.batchSize);
      try {
        await this.writer.insert(batch.map((b) => b.record));
      } catch (error) {
        const attempt = this.state === 'half-open' ? 'probe' : 'flush';
        this.failed(error, attempt, batch[0].record, batch.length);
        if (attempt === 'flush') {
          this.console.emit(AUDIT_EVENTS.flushFailed, 'error', {
            ...context(batch[0].record),
            error: this.lastError,
            remaining: this.buffer.size,
          });
        }
        return;
      }
      if (this.state === 'half-open') this.up();
      // Entries may have been evicted meanwhile: remove exactly those up to this batch's last seq.
      const lastSeq = batch[batch.length - 1].seq;
      while ((this.buffer.peek()?.seq ?? Infinity) <= lastSeq) {
        this.buffer.shift();
        this.outage.flushed += 1;
      }
    }
    if (this.state === 'up' && this.buffer.size === 0 && this.downSince) this.recovered();
  }

  private up(): void {
    this.state = 'up';
    this.consecutiveFailures = 0;
    this.schedulePump();
  }

  private recovered(): void {
    const totals = { ...this.outage, downForMs: Date.now() - (this.downSince?.getTime() ?? Date.now()) };
    this.console.emit(AUDIT_EVENTS.recovered, 'info', totals);
    this.alert(() => this.reporter.recovered(totals));
    this.downSince = null;
    this.outage = { failedAttempts: 0, dropped: 0, flushed: 0 };
  }

  private failed(error: unknown, attempt: WriteFailureReport['attempt'], first: AuditRecord, entries: number): void {
    const wasUp = this.state === 'up';
    this.lastError = sanitizeDbError(error, this.secrets);
    // Concurrent batches failing together are one failure for the backoff.
    if (!(attempt === 'write' && !wasUp)) this.consecutiveFailures += 1;
    this.state = 'down';
    this.downSince ??= new Date();
    this.retryAt = Date.now() + this.backoffMs();
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.retryBuffered(), this.retryAt - Date.now()).unref();
    this.outage.failedAttempts += 1;
    this.console.emit(AUDIT_EVENTS.dbWriteFailed, 'error', {
      ...context(first),
      attempt,
      entries,
      error: this.lastError,
      retryAt: new Date(this.retryAt).toISOString(),
    });
    const report = { ...context(first), error: this.lastError, attempt, entries, buffered: this.buffer.size };
    this.alert(() => this.reporter.writeFailed(report));
    const queued = this.queue;
    this.queue = [];
    queued.forEach((p) => this.keep(p));
  }

  /** Exponential backoff with "equal jitter": half the delay fixed, half random. */
  private backoffMs(): number {
    const exponent = Math.max(0, this.consecutiveFailures - 1);
    const delay = Math.min(this.options.retryBackoffMaxMs, this.options.retryBackoffMs * 2 ** Math.min(exponent, 30));
    return delay / 2 + Math.random() * (delay / 2);
  }

  private keep(pending: Pending): void {
    const evicted = this.buffer.push({ seq: ++this.seq, record: pending.record }, pending.bytes);
    for (const old of evicted) {
      this.dropped += 1;
      this.outage.dropped += 1;
      this.console.emit(AUDIT_EVENTS.evicted, 'error', { ...context(old.record), reason: 'buffer_full', dropped: this.dropped });
    }
    this.console.emit(AUDIT_EVENTS.buffered, 'warn', {
      ...context(pending.record),
      error: this.lastError,
      buffered: this.buffer.size,
      entry: pending.record,
    });
    pending.settle();
  }

  /** A failing alert sink must not cost an entry or a state change. */
  private alert(send: () => void): void {
    try {
      send();
    } catch (error) {
      this.logger.warn(`audit reporter failed: ${String(error)}`);
    }
  }

  private track(write: Promise<void>): void {
    this.inFlight.add(write);
    void write.finally(() => {
      this.inFlight.delete(write);
      this.pump();
    });
  }

  private async settleWrites(): Promise<void> {
    while (this.queue.length > 0 || this.inFlight.size > 0 || this.flushing) {
      this.pump();
      await Promise.allSettled([...this.inFlight, this.flushing]);
    }
  }
}

function context(record: AuditRecord) {
  return { auditId: record.id, action: record.action, entityType: record.entityType, entityId: record.entityId, userId: record.userId };
}
