import { type BeforeApplicationShutdown, Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { type EntityManager, type Repository } from 'typeorm';
import { AuditBuffer } from './audit-buffer';
import { markRecordedAtomically } from './audit-context';
import { type AuditEntry, AuditEntryNormalizer, type AuditRecord } from './audit-entry';
import { AuditFallback, lineContext } from './audit-fallback';
import { type AuditLog } from './audit-log.entity';
import { type ResolvedAuditOptions } from './audit-options';
import { AUDIT_OPTIONS, AUDIT_REPOSITORY } from './audit.constants';
import { AuditWriteQueue, BACKLOG_FULL_CODE, type PendingEntry } from './audit-write-queue';
import { AuditWriter } from './audit.writer';
import { connectionSecrets, type SanitizedDbError, sanitizeDbError } from './db-error';
import { AUDIT_EVENTS, AuditReporter, ConsoleSink, type WriteFailureReport } from './sinks';
import { AuditQuarantine, isolateRefused } from './quarantine';
import { AuditSpool } from './spool';
import { EntityChangeSubscriber, withEntityChanges } from './diffs';

/** How often, while up, the spool is checked for segments that processes gone from a shared directory left. */
const SPOOL_SWEEP_MS = 1000;

/** `up`: writing to the database; `down`: buffering; `half-open`: one try is testing the database. */
export type AuditState = 'up' | 'down' | 'half-open';

/** What the health indicator and operators see. `spooled`/`spoolBytes` only with a spool. */
export interface AuditStatus {
  state: AuditState;
  /** Entries on their way to the database: queued for the writer or in flight. */
  pending: number;
  buffered: number;
  bufferedBytes: number;
  dropped: number;
  /** Entries the database refused for their content, set aside since start. */
  quarantined: number;
  /** Values of logged entries that could not be read (a throwing getter or proxy), stored as `[Unreadable]`. */
  unreadable: number;
  /** Entity changes that could not be captured as diffs (the writes themselves went ahead). */
  diffFaults: number;
  spooled?: number;
  spoolBytes?: number;
  downSince: string | null;
  lastError: SanitizedDbError | null;
}

/**
 * Records audit entries and keeps them safe when the database is not. `log()` never rejects.
 * While up, concurrent entries share one multi-row INSERT (group commit); what waits for the
 * database is bounded by `bufferSize` and `bufferMaxBytes`, and an entry not committed
 * `writeTimeoutMs` after its `log()` counts as a failed write. Entries the database refuses for
 * their content are quarantined and the rest of their batch commits. The first failed or
 * timed-out write turns the service `down`: entries then go to the ring buffer and to one stderr
 * line each (or, in sync mode with a spool, straight to the fsynced spool), and Sentry hears of
 * every failed attempt. After a cool-down (exponential backoff with jitter) the next entry, or the
 * oldest buffered batch when none comes, tries the database (`half-open`); when the try commits,
 * the service is `up` again and flushes the ring, then the spool, in batches, once per entry.
 *
 * @example
 * await auditService.log({ action: 'nda_created', entityType: 'NDA', entityId: id, userId });
 */
@Injectable()
export class AuditService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('AuditModule');
  private readonly normalizer: AuditEntryNormalizer;
  private readonly writer: AuditWriter;
  private readonly fallback: AuditFallback;
  private readonly quarantine: AuditQuarantine;
  private readonly secrets: string[];
  private state: AuditState = 'up';
  private readonly writes: AuditWriteQueue;
  private flushing: Promise<void> | undefined;
  private consecutiveFailures = 0;
  private retryAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private shuttingDown = false;
  /** After shutdown has placed what it held: later entries go straight to the spool, or are dropped. */
  private closed = false;
  private shutdownDeadline = Infinity;
  private seq = 0;
  private unreadable = 0;
  private downSince: Date | null = null;
  private lastError: SanitizedDbError | null = null;
  private outage = { failedAttempts: 0, dropped: 0, flushed: 0 };

  constructor(
    @Inject(AUDIT_OPTIONS) private readonly options: ResolvedAuditOptions,
    @Inject(AUDIT_REPOSITORY) repository: Repository<AuditLog>,
    @Inject(AuditBuffer) buffer: AuditBuffer,
    @Inject(AuditSpool) spool: AuditSpool | null,
    @Inject(AuditReporter) private readonly reporter: AuditReporter,
    private readonly console: ConsoleSink,
    // Always provided by AuditModule; absent only where a test constructs the service itself.
    @Inject(EntityChangeSubscriber) private readonly diffs?: EntityChangeSubscriber,
  ) {
    this.normalizer = new AuditEntryNormalizer(options.redactKeys, options.maxEntryBytes);
    this.writer = new AuditWriter(repository, options.writeTimeoutMs);
    this.secrets = connectionSecrets(repository.manager?.connection?.options);
    this.quarantine = new AuditQuarantine(options.spoolDir, console, reporter, this.secrets);
    this.writes = new AuditWriteQueue(
      (records, deadline) => this.insert(records, deadline),
      { batchSize: options.batchSize, maxEntries: options.bufferSize, maxBytes: options.bufferMaxBytes, timeoutMs: options.writeTimeoutMs },
      () => this.state === 'up',
      (error, batch) => {
        this.failed(error, 'write', batch[0].record, batch.length);
        this.park(batch);
      },
    );
    this.fallback = new AuditFallback(buffer, spool, console, reporter, (n) => (this.outage.dropped += n));
  }

  /** False from the first failed write until a half-open try commits. */
  get dbAvailable(): boolean {
    return this.state === 'up';
  }

  /**
   * Records one entry. Resolves once the entry has a home: committed; or, when the database does
   * not take it, buffered with its stderr line (in sync mode with a spool: fsynced to the spool).
   * Never rejects.
   */
  log(entry: AuditEntry): Promise<void> {
    return new Promise<void>((settle) => {
      try {
        const { record, bytes, faults } = this.normalizer.normalize(withEntityChanges(entry));
        this.unreadable += faults;
        const pending = { record, bytes, seq: ++this.seq, deadline: Date.now() + this.options.writeTimeoutMs, settle };
        if (this.closed) void this.fallback.afterShutdown(record, this.lastError).finally(settle);
        else this.route(pending);
      } catch (error) {
        // Unreachable by design (normalize never throws); kept so log() can honour "never rejects".
        this.fallback.unreadable(entry, error);
        settle();
      }
    });
  }

  /**
   * Writes the entry inside the caller's transaction, so the mutation and its audit row commit or
   * roll back together; the interceptor then writes no second row for the request. Unlike `log()`,
   * it rejects when the insert fails (and so fails the caller's transaction). The audit table
   * must be reachable through `manager`, i.e. in the same database.
   *
   * @example
   * import { type EntityManager } from 'typeorm';
   * await dataSource.transaction(async (manager: EntityManager) => {
   *   await manager.query('INSERT INTO nda (id, title) VALUES ($1, $2)', [id, title]);
   *   await auditService.record({ action: 'nda_created', entityType: 'NDA', entityId: id }, { manager });
   * });
   */
  async record(entry: AuditEntry, { manager }: { manager: EntityManager }): Promise<AuditRecord> {
    const { record } = this.normalizer.normalize(withEntityChanges(entry, manager));
    await this.writer.insertWith(manager, [record]);
    markRecordedAtomically();
    return record;
  }

  /** A snapshot for health checks and diagnostics. */
  status(): AuditStatus {
    const { buffer, spool } = this.fallback;
    return {
      state: this.state,
      pending: this.writes.pending,
      buffered: buffer.size,
      bufferedBytes: buffer.bytes,
      dropped: this.fallback.dropped,
      quarantined: this.quarantine.count,
      unreadable: this.unreadable,
      diffFaults: this.diffs?.faults ?? 0,
      ...(spool ? { spooled: spool.entries, spoolBytes: spool.bytes } : {}),
      downSince: this.downSince?.toISOString() ?? null,
      lastError: this.lastError,
    };
  }

  /**
   * Connects a DataSource the app left uninitialized (so that it could start while the audit
   * database was unreachable), and replays entries spooled by an earlier run.
   */
  onApplicationBootstrap(): void {
    if (this.fallback.spool) {
      // Segments another process left in a shared spool directory are adopted by the next replay.
      this.sweepTimer = setInterval(() => {
        if (this.state === 'up' && !this.flushing && !this.shuttingDown) void this.flush({ sweep: true });
      }, SPOOL_SWEEP_MS).unref();
    }
    if (this.writer.connected) {
      if ((this.fallback.spool?.entries ?? 0) > 0) void this.flush();
      return;
    }
    // Entries logged meanwhile queue for the writer, whose inserts wait for the same connection.
    this.writer.connectWithinTimeout().then(
      () => {
        if (!this.shuttingDown) void this.flush();
      },
      (error: unknown) => {
        if (this.state === 'up' && !this.shuttingDown) this.failed(error, 'connect', undefined, 0);
      },
    );
  }

  /**
   * Drains the writer queue and the ring to the database while it can, the rest to the spool (or
   * counted as dropped). It stops starting database writes `2 × writeTimeoutMs` after it began, and
   * each write is bounded by `writeTimeoutMs`; a spool replay in progress stops after its batch.
   */
  async beforeApplicationShutdown(): Promise<void> {
    // No retry may start after this: the DataSource is about to close.
    this.shuttingDown = true;
    this.shutdownDeadline = Date.now() + 2 * this.options.writeTimeoutMs;
    clearTimeout(this.retryTimer);
    clearInterval(this.sweepTimer);
    await this.settleWrites();
    if (this.fallback.buffer.size > 0 && Date.now() < this.shutdownDeadline) {
      // One last try, whatever the cool-down says; the spool keeps for the next start.
      this.state = this.state === 'down' ? 'half-open' : this.state;
      await this.flush({ withSpool: false });
      await this.settleWrites();
    }
    this.closed = true;
    this.park(this.writes.takeQueued());
    void this.fallback.evacuate(this.lastError);
    // A disk that hangs must not hold the app: the entries' audit.buffered lines remain.
    await within(this.fallback.appendsSettled(), this.options.writeTimeoutMs);
    await within(this.fallback.spool?.close(), this.options.writeTimeoutMs);
  }

  private route(pending: PendingEntry): void {
    if (this.state === 'up') {
      if (this.writes.push(pending)) return;
      const { bufferSize, bufferMaxBytes } = this.options;
      const backlog = new Error(`more than ${bufferSize} entries or ${bufferMaxBytes} bytes waiting for the audit database`);
      this.failed(Object.assign(backlog, { code: BACKLOG_FULL_CODE }), 'write', pending.record, 1);
      this.park([pending]);
    } else if (this.state === 'down' && Date.now() >= this.retryAt) {
      this.probe(pending);
    } else {
      this.park([pending]);
    }
  }

  private probe(pending: PendingEntry): void {
    this.state = 'half-open';
    this.writes.send(
      [pending],
      () => {
        this.up();
        void this.flush();
      },
      (error) => {
        this.failed(error, 'probe', pending.record, 1);
        this.park([pending]);
      },
    );
  }

  /**
   * Entries the database did not take: to the ring with their lines, or in sync mode with a spool,
   * to the spool. A spool write that has not resolved within `writeTimeoutMs` does not hold the
   * request longer: the entry goes to the ring as well (a duplicate there is harmless).
   */
  private park(pendings: PendingEntry[]): void {
    if (pendings.length === 0) return;
    if (this.closed) {
      for (const p of pendings) void this.fallback.afterShutdown(p.record, this.lastError).finally(p.settle);
    } else if (this.options.mode === 'sync' && this.fallback.spool) {
      let answered = false;
      const answer = () => {
        answered = true;
        pendings.forEach((p) => p.settle());
      };
      const timer = setTimeout(() => {
        this.fallback.keep(pendings, this.lastError);
        answer();
      }, this.options.writeTimeoutMs).unref();
      void this.fallback
        .toSpool(
          pendings.map((p) => p.record),
          'sync',
        )
        .finally(() => {
          clearTimeout(timer);
          if (!answered) answer();
        });
    } else {
      this.fallback.keep(pendings, this.lastError);
      pendings.forEach((p) => p.settle());
    }
  }

  /** With no new entry to try the database, the oldest buffered batch (or a connection) is the try. */
  private retryBuffered(): void {
    if (this.state !== 'down' || this.shuttingDown) return;
    if (!this.writer.connected) {
      void this.connect();
    } else if (this.fallback.buffer.size > 0 || (this.fallback.spool?.entries ?? 0) > 0 || this.fallback.appending > 0) {
      this.state = 'half-open';
      void this.flush();
    }
  }

  /** The half-open try of a DataSource that never connected; entries meanwhile wait in the ring. */
  private async connect(): Promise<void> {
    this.state = 'half-open';
    try {
      await this.writer.connectWithinTimeout();
    } catch (error) {
      this.failed(error, 'connect', undefined, 0);
      return;
    }
    this.up();
    void this.flush();
  }

  /** `sweep`: replay the spool even when it counts no entries (a replay adopts abandoned segments). */
  private flush(options: { withSpool?: boolean; sweep?: boolean } = {}): Promise<void> {
    this.flushing ??= this.runFlush(options.withSpool ?? true, options.sweep ?? false).finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /**
   * Writes the ring oldest first, then replays the spool; in `half-open` the first batch decides.
   * Entries parked while that first try was in flight land behind it (in the ring, or in a new
   * spool segment, once their append has settled), so it goes round until a pass finds nothing
   * left to write. A spool fault that is not a failed insert is a failed attempt too.
   */
  private async runFlush(withSpool: boolean, sweep: boolean): Promise<void> {
    const live = () => (this.state === 'up' || this.state === 'half-open') && Date.now() < this.shutdownDeadline;
    const spool = withSpool ? this.fallback.spool : null;
    let progress = true;
    while (progress && live()) {
      progress = false;
      while (live() && this.fallback.buffer.size > 0) {
        const batch = this.fallback.checkout(this.options.batchSize);
        if (!(await this.flushBatch(batch.map((b) => b.record)))) {
          this.fallback.aborted();
          return;
        }
        this.outage.flushed += this.fallback.committed();
        progress = true;
      }
      if (spool && (spool.entries > 0 || sweep) && live()) {
        sweep = false;
        const before = spool.entries;
        let insertFailed = false;
        try {
          this.outage.flushed += await spool.replay(
            async (records) => {
              if (this.shuttingDown) throw new Error('spool replay stopped for shutdown');
              insertFailed = !(await this.flushBatch(records));
              if (insertFailed) throw new Error('spool replay stopped');
            },
            this.options.batchSize,
            (rejection) => this.fallback.rejected(rejection),
          );
        } catch (error) {
          // A failed insert has been reported by flushBatch; the segment stays for the next recovery.
          if (!insertFailed && !this.shuttingDown) this.failed(error, this.state === 'half-open' ? 'probe' : 'flush', undefined, 0);
          return;
        }
        progress ||= spool.entries < before;
      }
      if (!progress && spool && this.fallback.appending > 0 && live()) {
        await this.fallback.appendsSettled();
        progress = true;
      }
    }
    if (this.state === 'half-open') this.up();
    const empty = this.fallback.buffer.size === 0 && (spool?.entries ?? 0) === 0;
    if (this.state === 'up' && empty && this.downSince) this.recovered();
  }

  /**
   * Inserts a batch, each try bounded by `deadline` (default: `writeTimeoutMs` from each try).
   * Records the database refuses for their content are quarantined; the rest commit.
   */
  private async insert(records: AuditRecord[], deadline?: number): Promise<void> {
    const { refused } = await isolateRefused(records, (batch) => this.writer.insert(batch, deadline));
    if (refused.length > 0) await this.quarantine.put(refused);
  }

  /** One flush insert; on failure the service is down again and the batch stays where it was. */
  private async flushBatch(records: AuditRecord[]): Promise<boolean> {
    try {
      await this.insert(records);
    } catch (error) {
      const attempt = this.state === 'half-open' ? 'probe' : 'flush';
      this.failed(error, attempt, records[0], records.length);
      if (attempt === 'flush') {
        this.console.emit(AUDIT_EVENTS.flushFailed, 'error', {
          ...lineContext(records[0]),
          error: this.lastError,
          remaining: this.fallback.buffer.size,
        });
      }
      return false;
    }
    if (this.state === 'half-open') this.up();
    return true;
  }

  private up(): void {
    this.state = 'up';
    this.consecutiveFailures = 0;
    this.writes.schedule();
  }

  private recovered(): void {
    const totals = { ...this.outage, downForMs: Date.now() - (this.downSince?.getTime() ?? Date.now()) };
    this.console.emit(AUDIT_EVENTS.recovered, 'info', totals);
    this.alert(() => this.reporter.recovered(totals));
    this.downSince = null;
    this.outage = { failedAttempts: 0, dropped: 0, flushed: 0 };
  }

  private failed(error: unknown, attempt: WriteFailureReport['attempt'], first: AuditRecord | undefined, entries: number): void {
    const wasUp = this.state === 'up';
    this.lastError = sanitizeDbError(error, this.secrets);
    // Concurrent batches failing together are one failure for the backoff.
    if (!(attempt === 'write' && !wasUp)) this.consecutiveFailures += 1;
    this.state = 'down';
    this.downSince ??= new Date();
    this.retryAt = Date.now() + this.backoffMs();
    clearTimeout(this.retryTimer);
    if (!this.shuttingDown) this.retryTimer = setTimeout(() => this.retryBuffered(), this.retryAt - Date.now()).unref();
    this.outage.failedAttempts += 1;
    const context = lineContext(first);
    this.console.emit(AUDIT_EVENTS.dbWriteFailed, 'error', {
      ...context,
      attempt,
      entries,
      error: this.lastError,
      retryAt: new Date(this.retryAt).toISOString(),
    });
    const report = { ...context, error: this.lastError, attempt, entries, buffered: this.fallback.buffer.size };
    this.alert(() => this.reporter.writeFailed(report));
    this.park(this.writes.takeQueued());
  }

  /** Exponential backoff with "equal jitter": half the delay fixed, half random. */
  private backoffMs(): number {
    const exponent = Math.max(0, this.consecutiveFailures - 1);
    const delay = Math.min(this.options.retryBackoffMaxMs, this.options.retryBackoffMs * 2 ** Math.min(exponent, 30));
    return delay / 2 + Math.random() * (delay / 2);
  }

  /** A failing alert sink must not cost an entry or a state change. */
  private alert(send: () => void): void {
    try {
      send();
    } catch (error) {
      this.logger.warn(`audit reporter failed: ${String(error)}`);
    }
  }

  private async settleWrites(): Promise<void> {
    await this.writes.settle();
    while (this.flushing) {
      await this.flushing;
      await this.writes.settle();
    }
  }
}

/** Waits for `promise`, at most `ms`. */
async function within(promise: Promise<unknown> | undefined, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}
