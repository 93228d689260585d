import { join } from 'node:path';
import { type AuditRecord } from '../audit-entry';
import { sanitizeDbError, type SanitizedDbError } from '../db-error';
import { AUDIT_EVENTS, type AuditReporter, type ConsoleSink } from '../sinks';
import { encodeSpoolLine, nodeSpoolFiles, type SpoolFiles } from '../spool';
import { boundedFiles, type BoundedFiles } from '../spool/bounded-files';
import { directoryBytes, QUARANTINE_DIR } from '../spool/directory-bytes';
import { type DirectoryLedger, directoryLedger } from '../spool/directory-ledger';
import { type RefusedRecord } from './isolate-refused';

export { QUARANTINE_DIR };

/**
 * The file system the quarantine writes through, the deadline of each of its operations, and the
 * bound of the directory it shares with the spool.
 */
export interface QuarantineFiles {
  files?: SpoolFiles;
  /** Default: 2000 ms; the module sets it to `writeTimeoutMs`. */
  timeoutMs?: number;
  /** The directory's total it writes within (default: none); the module sets it to `spoolMaxBytes`. */
  maxBytes?: number;
  /** What a spool file that cannot be measured counts as; the module sets it to `spoolSegmentBytes`. */
  segmentBytes?: number;
}

/** The size of a spool segment the quarantine counts for one it cannot measure, unless told. */
const SEGMENT_BYTES = 8 * 1024 * 1024;

/** Where one `put` left the refused entries. */
export interface QuarantineResult {
  quarantined: number;
  /** The file they were fsynced to; null without a `spoolDir`, or when the disk refused the write. */
  file: string | null;
}

/**
 * Where entries the database refused for their content go (promise 9). Each refused entry gets
 * one `audit.quarantined` line on stderr (audit context, sanitized error, the full entry, so that
 * a CloudWatch export can be replayed), and with a `spoolDir` one line in
 * `<spoolDir>/quarantine/quarantine-<ms>-<pid>.ndjson` (spool encoding, 0600, fsynced), which
 * `audit:replay` reads once the cause is fixed. Each `put` counts its entries and sends one Sentry
 * warning naming the first of them, never their `changes` or `metadata`. `put` never rejects.
 *
 * No file operation is waited for longer than `timeoutMs`: past it, the entries of the `put` are
 * on their stderr lines (with `file: null` and `fileError`), counted in `diskTimeouts`, and later
 * puts skip the file until the hung call returns. The disk's gate is the spool's (`spoolDir`): a call
 * of the spool or the chain memory that hung there skips the file too. A file whose write failed or hung takes no more
 * lines: the next put begins a new one, so a late write never runs into it. The directory is
 * counted (with `maxBytes`) and the file written in one turn of the process's writers of the spool
 * directory (see `DirectoryLedger`), and what it wrote is reported to the spool's next decision.
 *
 * @example
 * const quarantine = new AuditQuarantine(options.spoolDir, consoleSink, reporter, secrets);
 * const { refused } = await isolateRefused(records, (batch: AuditRecord[]) => writer.insert(batch));
 * await quarantine.put(refused); // { quarantined: 1, file: '/var/spool/audit/quarantine/quarantine-….ndjson' }
 */
export class AuditQuarantine {
  private total = 0;
  private file: string | undefined;
  private lastStamp = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly files: BoundedFiles;
  private readonly bound: { maxBytes: number | undefined; segmentBytes: number };
  /** This process's account of the spool directory, shared with the spool: found at the first write. */
  private ledger: Promise<DirectoryLedger> | undefined;
  private readonly timeoutMs: number;

  constructor(
    private readonly spoolDir: string | null,
    private readonly console: ConsoleSink,
    private readonly reporter: AuditReporter,
    private readonly secrets: readonly string[] = [],
    { files = nodeSpoolFiles, timeoutMs = 2000, maxBytes, segmentBytes = SEGMENT_BYTES }: QuarantineFiles = {},
  ) {
    this.files = boundedFiles(files, timeoutMs, spoolDir ?? undefined);
    this.bound = { maxBytes, segmentBytes };
    this.timeoutMs = timeoutMs;
  }

  /** Entries quarantined since start. */
  get count(): number {
    return this.total;
  }

  /** Quarantine file operations that did not return within their deadline, since start. */
  get diskTimeouts(): number {
    return this.files.timeouts;
  }

  put(refused: readonly RefusedRecord<AuditRecord>[]): Promise<QuarantineResult> {
    if (refused.length === 0) return Promise.resolve({ quarantined: 0, file: null });
    // One put at a time: lines of concurrent puts never interleave in the file.
    const result = this.chain.then(() => this.place(refused));
    this.chain = result.catch(() => undefined);
    return result.catch(() => ({ quarantined: refused.length, file: null }));
  }

  private async place(refused: readonly RefusedRecord<AuditRecord>[]): Promise<QuarantineResult> {
    const at = new Date().toISOString();
    const entries = refused.map(({ record, error }) => ({ record, error: sanitizeDbError(error, this.secrets) }));
    let file: string | null = null;
    let fileError: string | undefined;
    if (this.spoolDir !== null) {
      try {
        file = await this.append(entries.map(({ record, error }) => encodeSpoolLine(record, { quarantine: { at, error } })).join(''));
      } catch (error) {
        fileError = `quarantine_file_error: ${(error as Error).message}`;
      }
    }
    for (const { record, error } of entries) {
      this.total += 1;
      this.console.emit(AUDIT_EVENTS.quarantined, 'error', {
        ...context(record),
        error,
        file,
        ...(fileError ? { fileError } : {}),
        quarantined: this.total,
        entry: record,
      });
    }
    this.report(entries[0].record, entries[0].error, entries.length, file);
    return { quarantined: entries.length, file };
  }

  /**
   * Writes `text` to the quarantine file if it fits the bound, counted and written in one turn of
   * the directory's writers in this process (the spool's appends take theirs), and reported to them.
   */
  private async append(text: string): Promise<string> {
    const ledger = await (this.ledger ??= directoryLedger(this.spoolDir as string, this.timeoutMs));
    return ledger.turn(() => this.write(Buffer.from(text), ledger));
  }

  private async write(buffer: Buffer, ledger: DirectoryLedger): Promise<string> {
    // The spool's directory by its real path, as the spool has it (a `..` after a symbolic link included).
    const dir = join(ledger.dir, QUARANTINE_DIR);
    await this.files.mkdir(dir, 0o700);
    await this.withinBound(buffer.length, ledger.dir);
    const file = (this.file ??= join(dir, `quarantine-${String(this.stamp()).padStart(13, '0')}-${process.pid}.ndjson`));
    const handle = await this.files.open(file, 'a', 0o600);
    // Counted whole from here: a write that failed may have landed in part, or land later.
    ledger.wrote(buffer.length);
    try {
      for (let done = 0; done < buffer.length;) {
        const { bytesWritten } = await handle.write(buffer, done, buffer.length - done);
        if (!(bytesWritten > 0)) throw new Error('write made no progress');
        done += bytesWritten;
      }
      await handle.sync();
    } catch (error) {
      // It may end in part of a line, or a hung write may still land in it.
      this.file = undefined;
      throw error;
    } finally {
      await handle.close();
    }
    return file;
  }

  /** Rejects (`spool_full`) when `bytes` more would take the spool directory `spoolDir` past `maxBytes`. */
  private async withinBound(bytes: number, spoolDir: string): Promise<void> {
    const { maxBytes, segmentBytes } = this.bound;
    if (maxBytes === undefined) return;
    if ((await directoryBytes(this.files, spoolDir, segmentBytes)) + bytes > maxBytes) throw new Error('spool_full');
  }

  /** `Date.now()`, but never the stamp of an earlier file. */
  private stamp(): number {
    this.lastStamp = Math.max(Date.now(), this.lastStamp + 1);
    return this.lastStamp;
  }

  private report(first: AuditRecord, error: SanitizedDbError, count: number, file: string | null): void {
    try {
      this.reporter.entriesQuarantined({ count, auditId: first.id, action: first.action, entityType: first.entityType, error, file });
    } catch {
      // The stderr lines already say it.
    }
  }
}

function context(record: AuditRecord) {
  return {
    auditId: record.id,
    action: record.action,
    entityType: record.entityType,
    entityId: record.entityId,
    userId: record.userId,
  };
}
