import { join } from 'node:path';
import { type AuditRecord } from '../audit-entry';
import { sanitizeDbError, type SanitizedDbError } from '../db-error';
import { AUDIT_EVENTS, type AuditReporter, type ConsoleSink } from '../sinks';
import { encodeSpoolLine, nodeSpoolFiles, type SpoolFiles } from '../spool';
import { boundedFiles, type BoundedFiles } from '../spool/bounded-files';
import { type RefusedRecord } from './isolate-refused';

/** The folder under `spoolDir` that holds quarantine files; the spool itself never reads it. */
export const QUARANTINE_DIR = 'quarantine';

/** The file system the quarantine writes through, and the deadline of each of its operations. */
export interface QuarantineFiles {
  files?: SpoolFiles;
  /** Default: 2000 ms; the module sets it to `writeTimeoutMs`. */
  timeoutMs?: number;
}

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
 * lines: the next put begins a new one, so a late write never runs into it.
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

  constructor(
    private readonly spoolDir: string | null,
    private readonly console: ConsoleSink,
    private readonly reporter: AuditReporter,
    private readonly secrets: readonly string[] = [],
    { files = nodeSpoolFiles, timeoutMs = 2000 }: QuarantineFiles = {},
  ) {
    this.files = boundedFiles(files, timeoutMs, spoolDir ?? undefined);
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

  private async append(text: string): Promise<string> {
    const dir = join(this.spoolDir as string, QUARANTINE_DIR);
    await this.files.mkdir(dir, 0o700);
    const file = (this.file ??= join(dir, `quarantine-${String(this.stamp()).padStart(13, '0')}-${process.pid}.ndjson`));
    const handle = await this.files.open(file, 'a', 0o600);
    try {
      const buffer = Buffer.from(text);
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
