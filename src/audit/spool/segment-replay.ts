import { type AuditRecord } from '../audit-entry';
import { type SpoolRejection } from './audit-spool';
import { readSegmentLines, type SegmentPosition } from './segment-reader';
import { type SpoolFiles } from './spool-files';
import { decodeSpoolLine, type LineRejection } from './spool-line';

/** What the spool knows of one segment: its size and lines, and how far replay got through it. */
export interface SegmentState {
  bytes: number;
  lines: number;
  /** Every line before this one is committed or reported; a retried replay starts here. */
  done: SegmentPosition;
  /** Numbers of the lines already reported as rejected (each is reported once per process). */
  reported: Set<number>;
}

/** A segment as {@link FileSpool} finds or begins it. */
export function segmentState(stats: { bytes: number; lines: number }): SegmentState {
  return { ...stats, done: { offset: 0, line: 0 }, reported: new Set() };
}

/** An insert that failed during replay, carried past the read errors. */
export class InsertFailure {
  constructor(readonly cause: unknown) {}
}

/**
 * Inserts the records of one segment from where the last replay of it stopped, `batchSize` at a
 * time while reading on, and reports each bad line once. Throws an {@link InsertFailure} when an
 * insert fails, or the file system's error when the segment cannot be read.
 *
 * @example
 * const inserted = await replaySegment(files, path, state, insert, 500, onRejected);
 */
export async function replaySegment(
  files: SpoolFiles,
  path: string,
  state: SegmentState,
  insert: (records: AuditRecord[]) => Promise<void>,
  batchSize: number,
  onRejected: (rejection: SpoolRejection) => void,
): Promise<number> {
  let batch: AuditRecord[] = [];
  let inserted = 0;
  let position = state.done;
  const commit = async () => {
    if (batch.length > 0) {
      await insert(batch).catch((error: unknown) => Promise.reject(new InsertFailure(error)));
      inserted += batch.length;
      batch = [];
    }
    state.done = position;
  };
  for await (const line of readSegmentLines(files, path, state.done)) {
    const decoded = line.torn ? reject('torn_line') : line.tooLong ? reject('line_too_long') : decodeSpoolLine(line.text);
    if ('record' in decoded) batch.push(decoded.record);
    else if (!state.reported.has(line.number)) {
      state.reported.add(line.number);
      onRejected({ file: path, line: line.number, reason: decoded.rejected, text: line.text.slice(0, 512) });
    }
    position = { offset: line.end, line: line.number };
    if (batch.length === batchSize) await commit();
  }
  await commit();
  return inserted;
}

/**
 * Reports the lines of a segment that vanished before replay reached them (deleted by hand, say).
 *
 * @example
 * reportMissing(path, state, onRejected); // one `segment_missing` rejection per lost line
 */
export function reportMissing(path: string, state: SegmentState, onRejected: (rejection: SpoolRejection) => void): void {
  for (let line = state.done.line + 1; line <= state.lines; line += 1) {
    if (!state.reported.has(line)) onRejected({ file: path, line, reason: 'segment_missing', text: '' });
  }
}

function reject(rejected: LineRejection): { rejected: LineRejection } {
  return { rejected };
}
