import { type AuditRecord } from './audit-entry';

/**
 * An entry kept while the database is down; `seq` orders entries across evictions and flushes.
 *
 * @example
 * const oldest: BufferedEntry | undefined = buffer.toArray()[0];
 * oldest?.record.action; // 'nda_created'
 */
export interface BufferedEntry {
  seq: number;
  record: AuditRecord;
  /** Serialized size, as counted against `bufferMaxBytes`. */
  bytes: number;
}

/**
 * Injection token and interface of the in-memory buffer that holds entries while the database is
 * down. The default is a {@link RingBuffer} of `bufferSize` entries and `bufferMaxBytes` bytes;
 * provide your own under this token to change it.
 *
 * @example
 * class BufferProbe {
 *   constructor(@Inject(AuditBuffer) private readonly buffer: AuditBuffer) {}
 * }
 */
export const AuditBuffer = Symbol('AUDIT:BUFFER');
export interface AuditBuffer {
  readonly size: number;
  readonly bytes: number;
  /** Appends an entry and returns the entries evicted to make room, oldest first. */
  push(entry: BufferedEntry, bytes: number): BufferedEntry[];
  shift(): BufferedEntry | undefined;
  peek(): BufferedEntry | undefined;
  peekMany(n: number): BufferedEntry[];
}
