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

/**
 * Encodes the records of several appends into the text of one write, keeping those that fit in
 * `room` bytes (in order) and refusing the rest with `spool_full`.
 *
 * @example
 * const { results, text, lines } = packAppends([[a, b], [c]], spool.maxBytes - spool.bytes);
 */
export function packAppends(appends: AuditRecord[][], room: number): { results: SpoolAppendResult[]; text: string; lines: number } {
  let text = '';
  let lines = 0;
  const results = appends.map((records) => {
    const result: SpoolAppendResult = { kept: [], dropped: [] };
    for (const record of records) {
      const line = encodeSpoolLine(record);
      const size = Buffer.byteLength(line);
      if (size > room) {
        result.dropped.push(record);
        result.error = 'spool_full';
        continue;
      }
      room -= size;
      text += line;
      lines += 1;
      result.kept.push(record);
    }
    return result;
  });
  return { results, text, lines };
}

/** Turns every kept record of `results` into a dropped one, for `reason`. */
export function dropAll(results: SpoolAppendResult[], reason: string): void {
  for (const result of results) {
    result.dropped.push(...result.kept);
    result.kept = [];
    result.error = reason;
  }
}
