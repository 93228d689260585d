import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { type DataSource, type EntityManager, type QueryRunner, type Repository } from 'typeorm';
import { AuditBuffer } from './audit-buffer';
import { AuditCircuit, type AuditState } from './audit-circuit';
import { type AuditStateChange } from './audit-state-history';
import { currentAuditContext } from './audit-context';
import { type AuditEntry, AuditEntryNormalizer, type AuditRecord } from './audit-entry';
import { AuditFallback } from './audit-fallback';
import { type AuditLog } from './audit-log.entity';
import { type ResolvedAuditOptions } from './audit-options';
import { AUDIT_OPTIONS, AUDIT_REPOSITORY } from './audit.constants';
import { AuditRecovery } from './audit-recovery';
import { AuditWriteQueue, BACKLOG_FULL_CODE, type PendingEntry } from './audit-write-queue';
import { AuditWriter, writeTimeoutError } from './audit.writer';
import { connectionSecrets, type SanitizedDbError } from './db-error';
import {
  AUDIT_EVENTS,
  AuditReporter,
  ConsoleSink,
  stderrBacklog,
  stderrLinesTaken,
  writeStderrBehind,
  type WriteFailureReport,
} from './sinks';
import { AuditQuarantine, isolateRefused, splitBudgetMs } from './quarantine';
import { AuditSpool } from './spool';
import { EntityChangeSubscriber, holdForRecord, withEntityChanges } from './diffs';
import { entrySigner } from './integrity/entry-auth';
import { personalSplitter } from './privacy/personal-values';
import { erasureEntryMaxBytes, type ErasureRequest, type ErasureResult } from './privacy/erasure';
import { eraseWithDeadlines, ErasuresUnderWay } from './privacy/bounded-erasure';
import { dataSourcePool, queryWithin } from './db-session';
import { splitErased } from './privacy/recovery-guard';

/** How often, while up, the spool is checked for segments that processes gone from a shared directory left. */
const SPOOL_SWEEP_MS = 1000;

export { type AuditState } from './audit-circuit';

/**
 * What the health indicator and operators see. `spooled`/`spoolBytes` only with a spool.
 *
 * @example
 * const { state, buffered, dropped }: AuditStatus = auditService.status();
 */
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
  /** Spool and quarantine file operations given up at their deadline (`writeTimeoutMs`): the disk did not answer. */
  diskTimeouts: number;
  /** Bytes of lines waiting in the process's memory for stderr (its reader behind), the app's own writes included. */
  stderrQueuedBytes: number;
  /** Lines of the process not written since start: `bufferMaxBytes` of lines already waited in memory for stderr, or stderr refused them (EPIPE, ENOSPC). */
  stderrDropped: number;
  /** Sync mode: entries answered before stderr had taken the line that is their only copy (within `writeTimeoutMs`). */
  stderrLate: number;
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
 * oldest buffered batch when none comes, or a zero-row probe when nothing is kept, tries the
 * database (`half-open`), so that recovery never waits for traffic; when the try commits,
 * the service is `up` again and flushes the ring, then the spool, in batches, once per entry.
 *
 * @example
 * await auditService.log({ action: 'nda_created', entityType: 'NDA', entityId: id, userId });
 */
@Injectable()
export class AuditService implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly normalizer: AuditEntryNormalizer;
  /** Makes the erasure entries, never cut: {@link erasureEntryMaxBytes}. */
  private readonly erasureNormalizer: AuditEntryNormalizer;
  private readonly writer: AuditWriter;
  private readonly fallback: AuditFallback;
  private readonly quarantine: AuditQuarantine;
  private readonly circuit: AuditCircuit;
  private readonly writes: AuditWriteQueue;
  private readonly recovery: AuditRecovery;
  private readonly erasures = new ErasuresUnderWay();
  private sweepTimer: NodeJS.Timeout | undefined;
  private shuttingDown = false;
  /** After shutdown has placed what it held: later entries go straight to the spool, or are dropped. */
  private closed = false;
  private shutdownDeadline = Infinity;
  private seq = 0;
  private unreadable = 0;
  /** Whether the `audit.connection_in_block` line was written (once per instance). */
  private inBlockTold = false;
  private stderrLate = 0;

  constructor(
    @Inject(AUDIT_OPTIONS) private readonly options: ResolvedAuditOptions,
    @Inject(AUDIT_REPOSITORY) private readonly repository: Repository<AuditLog>,
    @Inject(AuditBuffer) buffer: AuditBuffer,
    @Inject(AuditSpool) spool: AuditSpool | null,
    @Inject(AuditReporter) private readonly reporter: AuditReporter,
    private readonly console: ConsoleSink,
    // Always provided by AuditModule; absent only where a test constructs the service itself.
    @Inject(EntityChangeSubscriber) private readonly diffs?: EntityChangeSubscriber,
  ) {
    this.normalizer = new AuditEntryNormalizer(
      options.redactKeys,
      options.maxEntryBytes,
      entrySigner(options.integrity.entryKeys),
      personalSplitter(options.privacy),
    );
    this.erasureNormalizer = new AuditEntryNormalizer(
      options.redactKeys,
      erasureEntryMaxBytes(options.maxEntryBytes),
      entrySigner(options.integrity.entryKeys),
      personalSplitter(options.privacy),
    );
    this.writer = new AuditWriter(repository, options.writeTimeoutMs, () => this.connectionInBlock());
    const secrets = connectionSecrets(repository.manager?.connection?.options);
    this.circuit = new AuditCircuit(options, console, reporter, secrets, () => this.retryBuffered());
    this.quarantine = new AuditQuarantine(options.spoolDir, console, reporter, secrets, {
      timeoutMs: options.writeTimeoutMs,
      maxBytes: options.spoolMaxBytes,
      segmentBytes: options.spoolSegmentBytes,
    });
    this.writes = new AuditWriteQueue(
      (records, deadline, splitting) => this.insert(records, deadline, splitting),
      {
        batchSize: options.batchSize,
        maxEntries: options.bufferSize,
        maxBytes: options.bufferMaxBytes,
        timeoutMs: options.writeTimeoutMs,
        // A sync request waits for its row: no linger there.
        lingerMs: options.mode === 'sync' ? 0 : options.batchDelayMs,
      },
      () => this.circuit.state === 'up',
      (error, batch) => {
        this.failed(error, 'write', batch[0].record, batch.length);
        this.park(batch);
      },
      (batch, written) => this.overdue(batch, written),
    );
    this.fallback = new AuditFallback(
      buffer,
      spool,
      console,
      reporter,
      (n) => this.circuit.count('dropped', n),
      Math.max(options.bufferSize, SPOOL_WAITING_FLOOR),
      options.writeTimeoutMs,
    );
    this.recovery = new AuditRecovery(this.fallback, this.circuit, console, options.batchSize, {
      insert: (records) => this.insertRecovered(records),
      probe: () => this.writer.probe(),
      failed: (error, attempt, first, entries) => this.failed(error, attempt, first, entries),
      up: () => this.up(),
      stopping: () => this.shuttingDown,
      deadline: () => this.shutdownDeadline,
    });
  }

  /** False from the first failed write until a half-open try commits. */
  get dbAvailable(): boolean {
    return this.circuit.state === 'up';
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
        if (this.closed) this.park([pending]);
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
   * roll back together; once that transaction has committed (as PostgreSQL answers its COMMIT),
   * the interceptor writes no second row for the request. Unlike `log()`, it rejects when the
   * insert fails (and so fails the caller's transaction). The audit table
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
    // Only a row that commits stands for the request: the DataSource's transaction outcomes are followed from here on.
    this.diffs?.followTransactions(manager.dataSource);
    // A manager without a query runner (a DataSource's, a repository's) sends each query on whichever
    // connection the pool hands, which may be inside a block: the insert gets a runner of its own,
    // whose connection's status is read after it, as for a caller's runner.
    const own = manager.queryRunner ? undefined : ownRunner(manager);
    try {
      const runner = manager.queryRunner ?? own;
      const hold = holdForRecord(runner, currentAuditContext(), this.options.writeTimeoutMs);
      const { record } = this.normalizer.normalize(withEntityChanges(entry, hold.changes));
      try {
        await this.writer.insertWith(own?.manager ?? manager, [record]);
      } catch (error) {
        hold.failed();
        throw error;
      }
      await hold.written({ id: record.id, occurredAt: record.occurredAt, table: this.writer.table() });
      return record;
    } finally {
      await own?.release();
    }
  }

  /**
   * Erases the personal values of every row of a user (as actor) or of an entity, in one
   * transaction with the `audit_erasure` entry that records it (docs/PRIVACY.md). The seals and
   * entry codes stay valid; rows written before the `privacy` option are counted as
   * `notErasable` and left as they are. With `dryRun`, lists what would change and changes
   * nothing. Rejects when the database refuses (unlike `log()`). Entries this instance logged
   * before the call and still waiting for its writer are written first (each within
   * `writeTimeoutMs`), so that the erasure covers them.
   *
   * @example
   * const { erased } = await auditService.erase({ userId: 'u-42', requestedBy: 'dpo@example.com' });
   */
  async erase(request: ErasureRequest): Promise<ErasureResult> {
    const { privacy, integrity } = this.options;
    await this.writes.flush();
    const pool = dataSourcePool(this.repository.manager.connection);
    if (!pool) throw new Error('the audit DataSource is not connected');
    const context = {
      table: this.writer.table(),
      normalize: (entry: AuditEntry) => this.erasureNormalizer.normalize(entry, { redact: false }).record,
      key: privacy.pseudonymKey ?? integrity.entryKeys[0]?.key ?? null,
      userIdPseudonym: privacy.userIdPseudonym,
    };
    return this.erasures.run((track) => eraseWithDeadlines(pool, this.options.writeTimeoutMs, context, request, track));
  }

  /** A snapshot for health checks and diagnostics. */
  status(): AuditStatus {
    const { buffer, spool } = this.fallback;
    const stderr = stderrBacklog();
    return {
      state: this.circuit.state,
      pending: this.writes.pending,
      buffered: buffer.size,
      bufferedBytes: buffer.bytes,
      dropped: this.fallback.dropped,
      quarantined: this.quarantine.count,
      unreadable: this.unreadable,
      diffFaults: this.diffs?.faults ?? 0,
      diskTimeouts: this.fallback.diskTimeouts + this.quarantine.diskTimeouts,
      stderrQueuedBytes: stderr.queuedBytes,
      stderrDropped: stderr.droppedLines,
      stderrLate: this.stderrLate,
      ...(spool ? { spooled: spool.entries, spoolBytes: spool.bytes } : {}),
      downSince: this.circuit.downSince?.toISOString() ?? null,
      lastError: this.circuit.lastError,
    };
  }

  /**
   * The write path's state over the last `windowMs` (default an hour): the state at the window's
   * start, then each change, oldest first (at most 500 changes are kept).
   *
   * @example
   * auditService.stateHistory(); // [{ at: '2026-12-04T16:00:00.000Z', state: 'up' }, { at: '…', state: 'down' }]
   */
  stateHistory(windowMs = 3_600_000): AuditStateChange[] {
    return this.circuit.history.since(Date.now() - windowMs);
  }

  /**
   * Connects a DataSource the app left uninitialized (so that it could start while the audit
   * database was unreachable), and replays entries spooled by an earlier run.
   */
  onApplicationBootstrap(): void {
    if (this.fallback.spool) {
      // Segments another process left in a shared spool directory are adopted by the next replay.
      this.sweepTimer = setInterval(() => {
        if (this.circuit.state === 'up' && !this.recovery.running && !this.shuttingDown) void this.recovery.flush({ sweep: true });
      }, SPOOL_SWEEP_MS).unref();
    }
    if (this.writer.connected) {
      if ((this.fallback.spool?.entries ?? 0) > 0) void this.recovery.flush();
      return;
    }
    // Entries logged meanwhile queue for the writer, whose inserts wait for the same connection.
    this.writer.connectWithinTimeout().then(
      () => {
        if (!this.shuttingDown) void this.recovery.flush();
      },
      (error: unknown) => {
        if (this.circuit.state === 'up' && !this.shuttingDown) this.failed(error, 'connect', undefined, 0);
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
    this.circuit.stop();
    clearInterval(this.sweepTimer);
    const erasures = this.erasures.giveUp(this.options.writeTimeoutMs);
    await this.settleWrites();
    if (this.fallback.buffer.size > 0 && Date.now() < this.shutdownDeadline) {
      // One last try, whatever the cool-down says; the spool keeps for the next start.
      if (this.circuit.state === 'down') this.circuit.halfOpen();
      await this.recovery.flush({ withSpool: false });
      await this.settleWrites();
    }
    this.closed = true;
    this.park(this.writes.takeQueued());
    void this.fallback.evacuate(this.circuit.lastError);
    // Each append is given up at its deadline: what a hung disk did not take is counted, with its line.
    await this.fallback.appendsSettled();
    await within(this.fallback.spool?.close() ?? Promise.resolve(), this.options.writeTimeoutMs, () => undefined);
    this.writer.abandonOpening();
    await erasures;
  }

  /**
   * Last of all (after the HTTP server has closed, so lines of requests still in flight are in
   * too): waits at most `writeTimeoutMs` until stderr has taken every line queued in the process's
   * memory, since the process's end would lose them; past that, one last `audit.stderr_behind` line
   * says how many bytes still wait.
   */
  async onApplicationShutdown(): Promise<void> {
    if (await stderrLinesTaken(this.options.writeTimeoutMs, true)) return;
    writeStderrBehind({ reason: 'shutdown', queuedBytes: stderrBacklog().queuedBytes });
  }

  private route(pending: PendingEntry): void {
    if (this.circuit.state === 'up') {
      if (this.writes.push(pending)) return;
      const { bufferSize, bufferMaxBytes } = this.options;
      const backlog = new Error(`more than ${bufferSize} entries or ${bufferMaxBytes} bytes waiting for the audit database`);
      this.failed(Object.assign(backlog, { code: BACKLOG_FULL_CODE }), 'write', pending.record, 1);
      this.park([pending]);
    } else if (this.circuit.mayRetry) {
      this.probe(pending);
    } else {
      this.park([pending]);
    }
  }

  private probe(pending: PendingEntry): void {
    this.circuit.halfOpen();
    this.writes.send(
      [pending],
      () => {
        this.up();
        void this.recovery.flush();
      },
      (error) => {
        this.failed(error, 'probe', pending.record, 1);
        this.park([pending]);
      },
    );
  }

  /**
   * Entries the database did not take: to the ring with their lines, or in sync mode with a spool,
   * to the spool. What the spool refuses, or has not taken within `writeTimeoutMs` (a hung disk),
   * goes to the ring with its line; with `max(bufferSize, 1000)` entries already waiting for the
   * spool, the ring takes the entry at once.
   */
  private park(pendings: PendingEntry[]): void {
    if (pendings.length === 0) return;
    if (this.closed) {
      for (const p of pendings) void this.fallback.afterShutdown(p.record, this.circuit.lastError).finally(p.settle);
    } else if (this.options.mode === 'sync' && this.fallback.spool) {
      void this.fallback.spoolOrKeep(pendings, this.circuit.lastError).then(
        ({ kept, written }) => {
          pendings.filter((p) => !kept.has(p.record.id)).forEach((p) => p.settle());
          this.answer(
            pendings.filter((p) => kept.has(p.record.id)),
            written,
          );
        },
        () => pendings.forEach((p) => p.settle()),
      );
    } else {
      this.answer(pendings, this.fallback.keep(pendings, this.circuit.lastError));
    }
  }

  /**
   * Answers requests whose entries' only copy outside the process is their stderr line. In sync
   * mode, once stderr has taken the lines (handed them to the kernel: a kill no longer loses them),
   * waiting at most `writeTimeoutMs`; an entry answered without that (its line still in memory, or
   * not written) counts in `stderrLate`. Async mode answers at once.
   */
  private answer(pendings: PendingEntry[], written: boolean): void {
    if (pendings.length === 0) return;
    const settle = (taken: boolean) => {
      if (!taken) this.stderrLate += pendings.length;
      pendings.forEach((p) => p.settle());
    };
    if (this.options.mode !== 'sync') return settle(true);
    const taken = written ? stderrLinesTaken(this.options.writeTimeoutMs) : false;
    if (typeof taken === 'boolean') settle(taken);
    else void taken.then(settle);
  }

  /**
   * The cool-down is over: the oldest buffered batch, the spool, or with nothing kept a probe (a
   * zero-row INSERT) tries the database, so that recovery never waits for traffic; a DataSource
   * that never connected tries to connect.
   */
  private retryBuffered(): void {
    if (this.circuit.state !== 'down' || this.shuttingDown) return;
    if (!this.writer.connected) {
      void this.connect();
    } else {
      this.circuit.halfOpen();
      void this.recovery.flush();
    }
  }

  /** The half-open try of a DataSource that never connected; entries meanwhile wait in the ring. */
  private async connect(): Promise<void> {
    this.circuit.halfOpen();
    try {
      await this.writer.connectWithinTimeout();
    } catch (error) {
      this.failed(error, 'connect', undefined, 0);
      return;
    }
    this.up();
    void this.recovery.flush();
  }

  /**
   * Inserts a batch, bounded by `deadline` (default: `writeTimeoutMs` from now). Records the
   * database refuses for their content are quarantined and the rest commit: the split that finds
   * them has a budget of its own ({@link splitBudgetMs} from the refusal, each round trip at most
   * `writeTimeoutMs`, none past shutdown's deadline), and `splitting` is told when it starts.
   */
  private async insert(records: AuditRecord[], deadline?: number, splitting?: () => void): Promise<void> {
    const timeoutMs = this.options.writeTimeoutMs;
    let budgetEnds: number | undefined;
    const { refused } = await isolateRefused(records, (batch, split) => {
      if (!split) return this.writer.insert(batch, deadline);
      if (budgetEnds === undefined) {
        budgetEnds = Date.now() + splitBudgetMs(records.length, timeoutMs);
        splitting?.();
      }
      // Shutdown starts no write past its deadline: a split it finds under way stops there too.
      const ends = Math.min(budgetEnds, this.shutdownDeadline);
      if (Date.now() >= ends) return Promise.reject(writeTimeoutError(timeoutMs));
      return this.writer.insert(batch, Math.min(ends, Date.now() + timeoutMs));
    });
    if (refused.length > 0) await this.quarantine.put(refused);
    this.circuit.committed();
  }

  /**
   * A recovery batch (ring or spool), with `privacy` on: entries of a subject erased since they
   * were made are quarantined (`subject_erased`), never inserted, as `audit:replay` holds them
   * back; one query for erasures per batch, on this path only.
   */
  private async insertRecovered(records: AuditRecord[]): Promise<void> {
    const { privacy, integrity, writeTimeoutMs } = this.options;
    if (!privacy.enabled) return this.insert(records);
    const keys = privacy.pseudonymKey ? [privacy.pseudonymKey] : integrity.entryKeys.map((k) => k.key);
    const pool = dataSourcePool(this.repository.manager.connection);
    if (!pool) throw new Error('the audit DataSource is not connected');
    // On a connection of its own, destroyed at the deadline: a silent network keeps none of the pool's.
    const query = async (sql: string, parameters: unknown[]) =>
      (await queryWithin(pool, sql, parameters, writeTimeoutMs, () => writeTimeoutError(writeTimeoutMs))) as Record<string, unknown>[];
    const { keep, held } = await splitErased(query, this.writer.table(), records, keys);
    // With every entry held back, the try that decides recovery is a zero-row INSERT.
    if (keep.length === 0) await this.writer.probe();
    else await this.insert(keep);
    // Only once the batch has left the ring or the spool: a failed one is held back again next time.
    if (held.length > 0) await this.quarantine.put(held);
  }

  /**
   * A batch whose split outlasts its entries' write timeout: in sync mode, where a request waits
   * for its entry, the entries go to the ring with their `audit.buffered` lines (as a sync entry
   * does without a spool) and the requests are answered. The split goes on; when it has placed
   * them (committed or quarantined) the copies leave the ring again. A split that fails parks
   * the batch anew, beside its copies: the flush's ON CONFLICT absorbs the second.
   */
  private overdue(batch: PendingEntry[], written: Promise<void>): void {
    if (this.options.mode !== 'sync') return;
    this.answer(batch, this.fallback.keep(batch, this.circuit.lastError));
    const copies = new Set(batch.map((p) => p.seq));
    void written.then(
      () => this.fallback.forget(copies),
      () => undefined,
    );
  }

  /**
   * A pooled connection of the audit DataSource was found inside a transaction block the app left
   * open: the trail's writes go elsewhere, but the app's own queries the pool hands it run inside
   * that block and commit only if it does. Said once, on stderr.
   */
  private connectionInBlock(): void {
    if (this.inBlockTold) return;
    this.inBlockTold = true;
    this.console.emit(AUDIT_EVENTS.connectionInBlock, 'warn', {
      message:
        'a pooled connection of the audit DataSource is inside a transaction block nobody ends (a query runner released without rollbackTransaction(), or BEGIN sent through the DataSource): queries the pool hands it commit only if that block does',
    });
  }

  private up(): void {
    this.circuit.up();
    this.writes.schedule();
  }

  private failed(error: unknown, attempt: WriteFailureReport['attempt'], first: AuditRecord | undefined, entries: number): void {
    this.circuit.failed(error, attempt, first, entries, this.fallback.buffer.size);
    this.park(this.writes.takeQueued());
  }

  private async settleWrites(): Promise<void> {
    await this.writes.settle();
    while (this.recovery.running) {
      await this.recovery.running;
      await this.writes.settle();
    }
  }
}

/** A query runner of the manager's DataSource, for a `record()` through a manager that has none; undefined where it cannot make one (a test's stand-in). */
function ownRunner(manager: EntityManager): QueryRunner | undefined {
  const dataSource = manager.connection as Partial<DataSource> | undefined;
  return dataSource?.isInitialized && typeof dataSource.createQueryRunner === 'function' ? dataSource.createQueryRunner() : undefined;
}

/** Entries that may wait for the spool's fsync at once, at the least (else `bufferSize`): a hung disk holds no more. */
const SPOOL_WAITING_FLOOR = 1000;
/** `promise`, or after `ms` what `late` gives (a value to go on with, or a throw). */
async function within<T>(promise: Promise<T>, ms: number, late: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(late());
      } catch (error) {
        reject(error as Error);
      }
    }, ms);
  });
  return await Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
