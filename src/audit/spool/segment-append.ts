import { type AuditRecord } from '../audit-entry';
import { type SpoolAppendResult } from './audit-spool';
import { type SpoolFileHandle } from './spool-files';
import { encodeSpoolLine } from './spool-line';

/**
 * Why an append to a segment failed, and whether the segment was put back to its size before
 * the append (`restored`); when it was not, the segment ends in a torn line and must be retired.
 */
export class SegmentAppendError extends Error {
  override readonly name = 'SegmentAppendError';

  constructor(
    override readonly cause: unknown,
    readonly restored: boolean,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/**
 * Writes all of `buffer` at the end of a segment of `size` bytes (a write may come back short:
 * a full disk, a file size limit) and fsyncs it. On any failure the segment is truncated back to
 * `size`, so no partial line is left in front of the next append, and a
 * {@link SegmentAppendError} is thrown.
 *
 * @example
 * await appendWhole(handle, Buffer.from(lines), segment.bytes); // durable once it resolves
 */
export async function appendWhole(handle: SpoolFileHandle, buffer: Buffer, size: number): Promise<void> {
  try {
    for (let done = 0; done < buffer.length;) {
      const { bytesWritten } = await handle.write(buffer, done, buffer.length - done);
      if (!(bytesWritten > 0)) throw new Error('write made no progress');
      done += bytesWritten;
    }
    await handle.sync();
  } catch (error) {
    const restored = await handle.truncate(size).then(
      () => true,
      () => false,
    );
    throw new SegmentAppendError(error, restored);
  }
}

/** One record of an append, encoded as its spool line; `append` is the index of the append it came in. */
export interface SpoolLine {
  append: number;
  record: AuditRecord;
  text: string;
  bytes: number;
}

/**
 * Encodes the records of several appends, in order, into their spool lines.
 *
 * @example
 * const lines = encodeAppends([[a, b], [c]]); // three lines; lines[2].append === 1
 */
export function encodeAppends(appends: AuditRecord[][]): SpoolLine[] {
  return appends.flatMap((records, append) =>
    records.map((record) => {
      const text = encodeSpoolLine(record);
      return { append, record, text, bytes: Buffer.byteLength(text) };
    }),
  );
}

/** What one write to a segment takes of the lines ({@link planSegment}). */
export interface SegmentPlan {
  /** Lines to write now, in one write. */
  write: SpoolLine[];
  /** Lines refused: they do not fit under `maxBytes` (`spool_full`). */
  full: SpoolLine[];
  /** Lines for the next segment: from the first that fits under `maxBytes` but not in this one. */
  rest: SpoolLine[];
}

/**
 * Plans the next write into a segment of `used` bytes: in order, the lines that fit in `room` bytes
 * (what is left under `maxBytes`) are written while the segment stays within `segmentBytes` (an
 * empty segment takes its first line however long); those that do not fit in `room` are refused,
 * and from the first line that would pass the segment's size on, the rest waits for a new segment.
 *
 * @example
 * const { write, full, rest } = planSegment(encodeAppends([[a, b], [c]]), maxBytes - bytes, segmentBytes, 0);
 */
export function planSegment(lines: SpoolLine[], room: number, segmentBytes: number, used: number): SegmentPlan {
  const write: SpoolLine[] = [];
  const full: SpoolLine[] = [];
  for (const [index, line] of lines.entries()) {
    if (line.bytes > room) {
      full.push(line);
      continue;
    }
    if (used > 0 && used + line.bytes > segmentBytes) return { write, full, rest: lines.slice(index) };
    room -= line.bytes;
    used += line.bytes;
    write.push(line);
  }
  return { write, full, rest: [] };
}

/**
 * Refuses `lines` in `results` (one result per append) for `reason`.
 *
 * @example
 * refuse(results, plan.full, 'spool_full');
 */
export function refuse(results: SpoolAppendResult[], lines: SpoolLine[], reason: string): void {
  for (const { append, record } of lines) {
    results[append].dropped.push(record);
    results[append].error = reason;
  }
}

/**
 * Counts `lines` as kept in `results` (one result per append).
 *
 * @example
 * keep(results, plan.write);
 */
export function keep(results: SpoolAppendResult[], lines: SpoolLine[]): void {
  for (const { append, record } of lines) results[append].kept.push(record);
}
