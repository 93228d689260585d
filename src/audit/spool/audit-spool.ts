import { type AuditRecord } from '../audit-entry';
import { type LineRejection } from './spool-line';

/**
 * What an append kept (durably, fsynced) and what it had to refuse, and why.
 *
 * @example
 * const { kept, dropped, error }: SpoolAppendResult = await spool.append(records);
 */
export interface SpoolAppendResult {
  kept: AuditRecord[];
  dropped: AuditRecord[];
  /** `spool_full`, or `spool_error: …` when the disk refused the write. */
  error?: string;
}

/**
 * A spool line that replay could not accept.
 *
 * @example
 * const rejection: SpoolRejection = rejected;
 * console.log(`${rejection.file}:${rejection.line} ${rejection.reason}`);
 */
export interface SpoolRejection {
  file: string;
  line: number;
  reason: LineRejection;
  /** The start of the line, for the operator. */
  text: string;
}

/**
 * Injection token and interface of the durable spool; `null` under this token when no `spoolDir`
 * is configured. The default is a {@link FileSpool}.
 *
 * @example
 * class SpoolProbe {
 *   constructor(@Inject(AuditSpool) private readonly spool: AuditSpool | null) {}
 * }
 */
export const AuditSpool = Symbol('AUDIT:SPOOL');
export interface AuditSpool {
  /**
   * Entries on disk, in the segments this process owns (and will replay); a segment adopted but
   * not read yet adds none until it is.
   */
  readonly entries: number;
  /** Bytes on disk of those segments; a {@link FileSpool}'s bound also counts other processes' segments. */
  readonly bytes: number;
  /**
   * Appends and fsyncs; resolves (never rejects) once the kept records are durable. The module
   * waits at most `writeTimeoutMs` for it: past that, the records go on as refused, and what the
   * append does later is ignored (a record that lands anyway replays idempotently).
   */
  append(records: AuditRecord[]): Promise<SpoolAppendResult>;
  /**
   * Inserts every closed segment's records through `insert`, oldest first, `batchSize` at a time,
   * and deletes a segment once all its batches committed. Rejects with the insert's own error
   * (keeping the segment; the next replay goes on after its last committed batch) when an insert
   * fails, or, after replaying the segments it could read, with a `SpoolReadError`
   * (`AUDIT_SPOOL_READ`) when one could not be read. Each bad line goes to `onRejected` once; so
   * does each line of a segment that vanished from the disk (`segment_missing`; once, with the text
   * `unknown count`, for a segment whose lines could never be read). Resolves with the number of
   * records inserted.
   */
  replay(
    insert: (records: AuditRecord[]) => Promise<void>,
    batchSize: number,
    onRejected: (rejection: SpoolRejection) => void,
  ): Promise<number>;
  close(): Promise<void>;
}
