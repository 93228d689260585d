import { type AuditBuffer, type BufferedEntry } from './audit-buffer';
import { type AuditRecord } from './audit-entry';
import { type SanitizedDbError } from './db-error';
import { type AuditReporter, AUDIT_EVENTS, type ConsoleSink, type DropReport } from './sinks';
import { stallTolerantDeadline } from './stall-tolerant-deadline';
import { type AuditSpool, SPOOL_ERROR_CODES, type SpoolAppendResult, type SpoolRejection } from './spool';

/** Why an entry reached the spool. */
export type SpoolReason = 'evicted' | 'shutdown' | 'sync';

/** Records the spool did not take, and why (`spool_full`, `spool_error: …`, `spool_backlog`, `spool_timeout`). */
interface Refusal {
  records: AuditRecord[];
  reason: string;
}

/** The audit context every stderr line carries. */
export function lineContext(record: AuditRecord | undefined) {
  return {
    auditId: record?.id ?? null,
    action: record?.action ?? null,
    entityType: record?.entityType ?? null,
    entityId: record?.entityId ?? null,
    userId: record?.userId ?? null,
  };
}

/**
 * Where entries go when the database does not take them, and the accounting that makes every
 * loss visible: the ring (with one `audit.buffered` line each), the spool for what the ring
 * evicts or shutdown leaves (`audit.spooled`), and `audit.dropped` (with the entry) plus a count
 * for anything that has no home left. Each spool append is waited for at most `timeoutMs`: past
 * it, its entries go on as if the spool had refused them (counted in `diskTimeouts`), and what the
 * append does later is ignored.
 *
 * @example
 * fallback.keep([{ seq, record, bytes }], lastError); // ring + stderr line; evictions go to the spool
 */
export class AuditFallback {
  /** Entries that left the module's custody without reaching the table. */
  dropped = 0;
  /** Spool appends and replays given up at their deadline: the disk did not answer in time. */
  diskTimeouts = 0;
  /** Seq of the newest entry in the ring (entries arrive oldest first, but for a failed older batch). */
  private newest = -Infinity;
  /** The recovery batch being written: its entries stay in the ring until it commits. */
  private checkedOut = new Set<number>();
  /** Entries the ring evicted while their own recovery batch was in flight: lost only if it fails. */
  private evictedInFlight: BufferedEntry[] = [];
  private readonly appends = new Set<Promise<void>>();
  /** Entries in spool appends not yet settled, including those given up at their deadline. */
  private waiting = 0;
  /** Set once shutdown has emptied the ring: nothing put there later would be flushed. */
  private evacuated = false;

  /** `maxWaiting`: entries that may wait for the spool at once; `timeoutMs`: how long an append is waited for. */
  constructor(
    readonly buffer: AuditBuffer,
    readonly spool: AuditSpool | null,
    private readonly console: ConsoleSink,
    private readonly reporter: AuditReporter,
    private readonly onDropped: (count: number) => void,
    private readonly maxWaiting: number,
    private readonly timeoutMs: number,
  ) {}

  /** Spool appends not yet answered (or given up): entries that count only once their fsync has resolved. */
  get appending(): number {
    return this.appends.size;
  }

  /**
   * Into the ring, each with the line that carries the full entry, in `seq` order (a failed batch
   * older than entries parked meanwhile goes ahead of them); evicted entries go on to the spool.
   * False when a line was not written (stderr's queue in memory full).
   */
  keep(entries: BufferedEntry[], error: SanitizedDbError | null, spoolError?: string): boolean {
    if (this.evacuated) {
      return this.drop(
        entries.map((e) => e.record),
        'shutdown',
        error,
      );
    }
    const ordered = [...entries].sort((a, b) => a.seq - b.seq);
    const held = ordered.length > 0 && ordered[0].seq < this.newest ? this.takeAll() : [];
    const evicted = this.pushAll(mergeBySeq(held, ordered));
    let written = true;
    for (const { record } of entries) {
      const spool = spoolError ? { spoolError } : {};
      const line = this.console.emit(AUDIT_EVENTS.buffered, 'warn', {
        ...lineContext(record),
        error,
        ...spool,
        buffered: this.buffer.size,
        entry: record,
      });
      written = line !== false && written;
    }
    this.evicted(evicted.filter((e) => !this.checkedOut.has(e.seq)));
    this.evictedInFlight.push(...evicted.filter((e) => this.checkedOut.has(e.seq)));
    return written;
  }

  /** The oldest `n` buffered entries, left in place until {@link committed} or {@link aborted}. */
  checkout(n: number): BufferedEntry[] {
    const batch = this.buffer.peekMany(n);
    this.checkedOut = new Set(batch.map((e) => e.seq));
    return batch;
  }

  /** The checked-out batch is in the table: it leaves the ring (those evicted meanwhile already did). */
  committed(): number {
    const flushed = this.checkedOut;
    let remaining = flushed.size - this.evictedInFlight.length;
    while (remaining > 0 && flushed.has(this.buffer.peek()?.seq ?? NaN)) {
      this.buffer.shift();
      remaining -= 1;
    }
    // Older entries parked ahead of the batch while it was in flight: take the rest out from behind them.
    if (remaining > 0) this.pushAll(this.takeAll().filter((e) => !flushed.has(e.seq)));
    this.checkedOut = new Set();
    this.evictedInFlight = [];
    return flushed.size;
  }

  /**
   * Part of the checked-out entries (those with these `seq`s) is in the table, the rest is not:
   * the committed part leaves the ring, and what the ring evicted of the rest meanwhile is evicted
   * for real now.
   */
  partlyCommitted(seqs: ReadonlySet<number>): number {
    this.forget(seqs);
    const lost = this.evictedInFlight.filter((e) => !seqs.has(e.seq));
    this.checkedOut = new Set();
    this.evictedInFlight = [];
    this.evicted(lost);
    return seqs.size;
  }

  /** Takes the entries with these `seq`s out of the ring: copies whose batch has been placed after all. */
  forget(seqs: ReadonlySet<number>): void {
    if (seqs.size > 0) this.pushAll(this.takeAll().filter((e) => !seqs.has(e.seq)));
  }

  /** The checked-out batch failed: what the ring evicted of it meanwhile is evicted for real now. */
  aborted(): void {
    this.checkedOut = new Set();
    this.evicted(this.evictedInFlight.splice(0));
  }

  /**
   * Appends to the spool (fsynced when it resolves); what the spool refuses or does not take
   * within `timeoutMs`, and what finds `maxWaiting` entries already waiting for it
   * (`spool_backlog`), is dropped with a line carrying the entry.
   */
  toSpool(records: AuditRecord[], reason: SpoolReason, withEntry = reason === 'sync'): Promise<void> {
    return this.track(
      this.append(records, reason, withEntry).then((refusals) => refusals.forEach((r) => this.drop(r.records, r.reason, null))),
    );
  }

  /**
   * Sync mode: each entry to the spool (resolving once it is fsynced) or, when the spool refuses
   * it or has not taken it within `timeoutMs`, to the ring with its `audit.buffered` line (the whole
   * entry, and `spoolError` saying why). Resolves with the ids of the entries put in the ring, and
   * whether all their lines were written.
   */
  async spoolOrKeep(entries: BufferedEntry[], error: SanitizedDbError | null): Promise<{ kept: Set<string>; written: boolean }> {
    const byId = new Map(entries.map((e) => [e.record.id, e]));
    const kept = new Set<string>();
    let written = true;
    await this.track(
      this.append(
        entries.map((e) => e.record),
        'sync',
        true,
      ).then((refusals) =>
        refusals.forEach((r) => {
          r.records.forEach((record) => kept.add(record.id));
          written =
            this.keep(
              r.records.flatMap((record) => byId.get(record.id) ?? []),
              error,
              r.reason,
            ) && written;
        }),
      ),
    );
    return { kept, written };
  }

  /**
   * Replays the spool (see {@link AuditSpool.replay}), reporting each line it had to skip. A replay
   * that stopped at a file operation past its deadline counts in `diskTimeouts` (not one refused
   * the disk because an earlier call on it hung: that call was counted).
   */
  async replay(spool: AuditSpool, insert: (records: AuditRecord[]) => Promise<void>, batchSize: number): Promise<number> {
    try {
      return await spool.replay(insert, batchSize, (rejection) => this.rejected(rejection));
    } catch (error) {
      if (isDiskTimeout(error)) this.diskTimeouts += 1;
      throw error;
    }
  }

  /** Resolves when every spool append begun so far has settled. */
  async appendsSettled(): Promise<void> {
    await Promise.allSettled([...this.appends]);
  }

  /** Empties the ring: into the spool when there is one, else into `audit.dropped` lines. */
  async evacuate(error: SanitizedDbError | null): Promise<void> {
    this.evacuated = true;
    const records = this.takeAll().map((e) => e.record);
    if (records.length === 0) return;
    if (this.spool) await this.toSpool(records, 'shutdown');
    else this.drop(records, 'shutdown', error);
  }

  /**
   * An entry logged after shutdown: to the spool, or dropped with a line that carries the entry
   * (it has had no `audit.buffered` line).
   */
  async afterShutdown(record: AuditRecord, error: SanitizedDbError | null): Promise<void> {
    if (this.spool) await this.toSpool([record], 'shutdown', true);
    else this.drop([record], 'shutdown', error);
  }

  /** An entry that could not be normalized at all: counted as dropped, with what could be read of it. */
  unreadable(entry: unknown, error: unknown): void {
    const context = readableContext(entry);
    this.count(1);
    this.console.emit(AUDIT_EVENTS.dropped, 'error', { ...context, reason: 'normalize_failed', error: safeText(error) });
    this.alertDropped({ count: 1, reason: 'normalize_failed', action: context.action ?? 'unknown' });
  }

  /** Reports a spool line that replay had to skip. */
  rejected(rejection: SpoolRejection): void {
    this.count(1);
    this.console.emit(AUDIT_EVENTS.dropped, 'error', {
      reason: `spool_${rejection.reason}`,
      file: rejection.file,
      line: rejection.line,
      text: rejection.text,
    });
  }

  /** Each line carries the entry: the stderr copy is all that is left of it. */
  private drop(records: AuditRecord[], reason: string, error: SanitizedDbError | null): boolean {
    this.count(records.length);
    let written = true;
    for (const record of records) {
      const line = this.console.emit(AUDIT_EVENTS.dropped, 'error', { ...lineContext(record), reason, error, entry: record });
      written = line !== false && written;
    }
    this.alertDropped({ count: records.length, reason, action: records[0].action });
    return written;
  }

  /** A failing alert sink costs nothing: the stderr lines already say it. */
  private alertDropped(report: DropReport): void {
    try {
      this.reporter.entriesDropped(report);
    } catch {
      // Nothing more to do.
    }
  }

  /**
   * Appends what `maxWaiting` leaves room for, waits at most `timeoutMs`, writes an
   * `audit.spooled` line for each entry kept, and returns the rest with the reason.
   */
  private async append(records: AuditRecord[], reason: SpoolReason, withEntry: boolean): Promise<Refusal[]> {
    const spool = this.spool;
    if (!spool) return [{ records, reason }];
    const room = Math.max(0, this.maxWaiting - this.waiting);
    const refusals: Refusal[] = records.length > room ? [{ records: records.slice(room), reason: 'spool_backlog' }] : [];
    const taken = records.slice(0, room);
    if (taken.length === 0) return refusals;
    const result = await this.appendWithin(spool, taken);
    if (result === 'timeout') {
      this.diskTimeouts += 1;
      return [...refusals, { records: taken, reason: 'spool_timeout' }];
    }
    for (const record of result.kept) {
      // Entries spooled straight from a request (sync mode, after shutdown) have had no audit.buffered line.
      const entry = withEntry ? { entry: record } : {};
      this.console.emit(AUDIT_EVENTS.spooled, 'warn', { ...lineContext(record), reason, spooled: spool.entries, ...entry });
    }
    if (result.dropped.length > 0) refusals.push({ records: result.dropped, reason: result.error ?? 'spool_error' });
    return refusals;
  }

  /** The spool's answer, or `'timeout'`; the entries count against `maxWaiting` until the spool really answers. */
  private appendWithin(spool: AuditSpool, records: AuditRecord[]): Promise<SpoolAppendResult | 'timeout'> {
    this.waiting += records.length;
    const append = (async () => spool.append(records))().catch((error: unknown): SpoolAppendResult => ({
      kept: [],
      dropped: records,
      error: `spool_error: ${safeText(error)}`,
    }));
    void append.finally(() => (this.waiting -= records.length));
    let cancel = () => undefined as void;
    const timeout = new Promise<'timeout'>((resolve) => (cancel = stallTolerantDeadline(this.timeoutMs, () => resolve('timeout'))));
    return Promise.race([append, timeout]).finally(() => cancel());
  }

  /** Counts `operation` among the appends {@link appendsSettled} waits for. */
  private track(operation: Promise<void>): Promise<void> {
    this.appends.add(operation);
    void operation.finally(() => this.appends.delete(operation));
    return operation;
  }

  /** Evicted entries: a line each, then the spool, or counted as dropped (their audit.buffered line holds them). */
  private evicted(evicted: BufferedEntry[]): void {
    if (evicted.length === 0) return;
    for (const old of evicted) {
      this.console.emit(AUDIT_EVENTS.evicted, 'error', { ...lineContext(old.record), reason: 'buffer_full', spooled: this.spool !== null });
    }
    if (this.spool) {
      void this.toSpool(
        evicted.map((e) => e.record),
        'evicted',
      );
    } else {
      this.count(evicted.length);
    }
  }

  private pushAll(entries: BufferedEntry[]): BufferedEntry[] {
    const evicted: BufferedEntry[] = [];
    for (const entry of entries) {
      evicted.push(...this.buffer.push(entry, entry.bytes));
      this.newest = Math.max(this.newest, entry.seq);
    }
    return evicted;
  }

  private takeAll(): BufferedEntry[] {
    const all: BufferedEntry[] = [];
    let entry: BufferedEntry | undefined;
    while ((entry = this.buffer.shift()) !== undefined) all.push(entry);
    this.newest = -Infinity;
    return all;
  }

  private count(n: number): void {
    this.dropped += n;
    this.onDropped(n);
  }
}

/** Two seq-ordered lists as one. */
function mergeBySeq(a: BufferedEntry[], b: BufferedEntry[]): BufferedEntry[] {
  if (a.length === 0) return b;
  const merged: BufferedEntry[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) merged.push(j >= b.length || (i < a.length && a[i].seq < b[j].seq) ? a[i++] : b[j++]);
  return merged;
}

/** Whatever can be read of an entry that could not be normalized, each field on its own. */
function readableContext(entry: unknown): Record<string, string | null> {
  const context: Record<string, string | null> = {};
  for (const key of ['action', 'entityType', 'entityId', 'userId'] as const) {
    try {
      const value = (entry as Record<string, unknown>)[key];
      context[key] = typeof value === 'string' || typeof value === 'number' ? String(value).slice(0, 256) : null;
    } catch {
      context[key] = null;
    }
  }
  return context;
}

/** A call of its own that hung: one refused, not begun, because another call on the disk hung (`stalled`) is counted there. */
function isDiskTimeout(error: unknown): boolean {
  const { code, cause } = (error ?? {}) as { code?: unknown; cause?: unknown };
  const timeout = (code === SPOOL_ERROR_CODES.diskTimeout ? error : cause) as { code?: unknown; stalled?: unknown } | undefined;
  return timeout?.code === SPOOL_ERROR_CODES.diskTimeout && timeout.stalled !== true;
}

function safeText(error: unknown): string {
  try {
    return String(error).slice(0, 300);
  } catch {
    return 'unreadable error';
  }
}
