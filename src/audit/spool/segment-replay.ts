import { join } from 'node:path';
import { type AuditRecord } from '../audit-entry';
import { type SpoolRejection } from './audit-spool';
import { readSegmentLines, type SegmentPosition } from './segment-reader';
import { SpoolReadError } from './spool-errors';
import { type SpoolFiles } from './spool-files';
import { decodeSpoolLine, type LineRejection } from './spool-line';

/** The `text` of the one report of a vanished segment whose lines were never counted. */
const UNKNOWN_COUNT = 'unknown count';

/** What the spool knows of one segment: its size and lines, and how far replay got through it. */
export interface SegmentState {
  bytes: number;
  /** `null`: not counted yet (an adopted segment that could not be read); counted again at each heartbeat. */
  lines: number | null;
  /** Every line before this one is committed or reported; a retried replay starts here. */
  done: SegmentPosition;
  /** Numbers of the lines already reported as rejected (each is reported once per process). */
  reported: Set<number>;
}

/** A segment as {@link FileSpool} finds or begins it. */
export function segmentState(stats: { bytes: number; lines: number | null }): SegmentState {
  return { ...stats, done: { offset: 0, line: 0 }, reported: new Set() };
}

/** An insert that failed during replay, carried past the read errors. */
class InsertFailure {
  constructor(readonly cause: unknown) {}
}

/**
 * Replays the segments `names` (of `segments`, in `dir`) oldest first, deleting each from the
 * disk and from `segments` once all its records are inserted. An insert failure rejects at once,
 * as it came. A segment that cannot be read stays; the others are replayed, then a
 * {@link SpoolReadError} rejects. A segment gone from the disk has its lines reported lost.
 *
 * @example
 * const inserted = await replaySegments(files, dir, segments, names, insert, 500, onRejected);
 */
export async function replaySegments(
  files: SpoolFiles,
  dir: string,
  segments: Map<string, SegmentState>,
  names: string[],
  insert: (records: AuditRecord[]) => Promise<void>,
  batchSize: number,
  onRejected: (rejection: SpoolRejection) => void,
): Promise<number> {
  let replayed = 0;
  let failure: SpoolReadError | undefined;
  for (const name of names.sort()) {
    const state = segments.get(name);
    if (!state) continue;
    const path = join(dir, name);
    try {
      replayed += await replaySegment(files, path, state, insert, batchSize, onRejected);
      await files.unlink(path).catch((error: unknown) => (errno(error) === 'ENOENT' ? undefined : Promise.reject(error)));
    } catch (error) {
      if (error instanceof InsertFailure) throw error.cause;
      if (errno(error) !== 'ENOENT') {
        failure ??= new SpoolReadError(path, error);
        continue;
      }
      reportMissing(path, state, onRejected);
    }
    segments.delete(name);
  }
  if (failure) throw failure;
  return replayed;
}

/**
 * Inserts the records of one segment from where the last replay of it stopped, `batchSize` at a
 * time while reading on, and reports each bad line once. Throws an {@link InsertFailure} when an
 * insert fails, or the file system's error when the segment cannot be read.
 *
 * @example
 * const inserted = await replaySegment(files, path, state, insert, 500, onRejected);
 */
async function replaySegment(
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
 * Reports the lines of a segment that vanished before replay reached them (deleted by hand, say);
 * when its lines were never counted, one report names the first line not replayed, `unknown count`.
 */
function reportMissing(path: string, state: SegmentState, onRejected: (rejection: SpoolRejection) => void): void {
  if (state.lines === null) {
    onRejected({ file: path, line: state.done.line + 1, reason: 'segment_missing', text: UNKNOWN_COUNT });
    return;
  }
  for (let line = state.done.line + 1; line <= state.lines; line += 1) {
    if (!state.reported.has(line)) onRejected({ file: path, line, reason: 'segment_missing', text: '' });
  }
}

function reject(rejected: LineRejection): { rejected: LineRejection } {
  return { rejected };
}

function errno(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}
