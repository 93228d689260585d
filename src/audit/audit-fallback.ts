import { type AuditBuffer, type BufferedEntry } from './audit-buffer';
import { type AuditRecord } from './audit-entry';
import { type SanitizedDbError } from './db-error';
import { type AuditReporter, AUDIT_EVENTS, type ConsoleSink } from './sinks';
import { type AuditSpool, type SpoolRejection } from './spool';

/** Why an entry reached the spool. */
export type SpoolReason = 'evicted' | 'shutdown' | 'sync';

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
 * evicts or shutdown leaves (`audit.spooled`), and `audit.dropped` plus a count for anything that
 * has no home left.
 *
 * @example
 * fallback.keep(record, bytes, lastError); // ring + stderr line; evictions go to the spool
 */
export class AuditFallback {
  private seq = 0;
  /** Entries that left the module's custody without reaching the table. */
  dropped = 0;

  constructor(
    readonly buffer: AuditBuffer,
    readonly spool: AuditSpool | null,
    private readonly console: ConsoleSink,
    private readonly reporter: AuditReporter,
    private readonly onDropped: (count: number) => void,
  ) {}

  /** Into the ring, with the line that carries the full entry; evicted entries go on to the spool. */
  keep(record: AuditRecord, bytes: number, error: SanitizedDbError | null): void {
    const evicted = this.buffer.push({ seq: ++this.seq, record }, bytes);
    this.console.emit(AUDIT_EVENTS.buffered, 'warn', { ...lineContext(record), error, buffered: this.buffer.size, entry: record });
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
      // Without a spool the audit.evicted line is the loss report; its audit.buffered line holds the entry.
      this.count(evicted.length);
    }
  }

  /** Appends to the spool (fsynced when it resolves); what the spool refuses is dropped. */
  async toSpool(records: AuditRecord[], reason: SpoolReason): Promise<void> {
    if (!this.spool) {
      this.drop(records, reason, null);
      return;
    }
    const { kept, dropped, error } = await this.spool.append(records);
    for (const record of kept) {
      // Entries spooled straight from a request (sync mode) have had no audit.buffered line yet.
      const entry = reason === 'sync' ? { entry: record } : {};
      this.console.emit(AUDIT_EVENTS.spooled, 'warn', { ...lineContext(record), reason, spooled: this.spool.entries, ...entry });
    }
    if (dropped.length > 0) this.drop(dropped, error ?? 'spool_error', null);
  }

  /** Oldest buffered entries, left in place. */
  peek(n: number): BufferedEntry[] {
    return this.buffer.peekMany(n);
  }

  /** Removes the buffered entries up to `lastSeq` (those evicted meanwhile are already gone). */
  release(lastSeq: number): number {
    let released = 0;
    while ((this.buffer.peek()?.seq ?? Infinity) <= lastSeq) {
      this.buffer.shift();
      released += 1;
    }
    return released;
  }

  /** Empties the ring: into the spool when there is one, else into `audit.dropped` lines. */
  async evacuate(error: SanitizedDbError | null): Promise<void> {
    const records: AuditRecord[] = [];
    let entry: BufferedEntry | undefined;
    while ((entry = this.buffer.shift()) !== undefined) records.push(entry.record);
    if (records.length === 0) return;
    if (this.spool) await this.toSpool(records, 'shutdown');
    else this.drop(records, 'shutdown', error);
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

  private drop(records: AuditRecord[], reason: string, error: SanitizedDbError | null): void {
    this.count(records.length);
    for (const record of records) this.console.emit(AUDIT_EVENTS.dropped, 'error', { ...lineContext(record), reason, error });
    try {
      this.reporter.entriesDropped({ count: records.length, reason, action: records[0].action });
    } catch {
      // The stderr lines above already say it.
    }
  }

  private count(n: number): void {
    this.dropped += n;
    this.onDropped(n);
  }
}
