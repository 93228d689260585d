import { type SpoolFiles } from './spool-files';

const CHUNK_BYTES = 256 * 1024;
/** Longer than any line the spool writes (an entry is at most 64 MiB, `maxEntryBytes`). */
const MAX_LINE_BYTES = 65 * 1024 * 1024;
const NEWLINE = 0x0a;

/** One line of a segment: its text, its 1-based number, and the byte offset just past it. */
export interface SegmentLine {
  text: string;
  number: number;
  end: number;
  /** The file ends inside this line: a write torn by a crash. */
  torn: boolean;
  /** Longer than any line the spool writes; `text` is empty. */
  tooLong: boolean;
}

/** Sizes, lowered by tests. */
export interface ReadLimits {
  chunkBytes?: number;
  maxLineBytes?: number;
}

/** Where to start reading: the byte offset of a line and that line's number minus one. */
export interface SegmentPosition {
  offset: number;
  line: number;
}

/**
 * Reads a segment line by line in chunks, never holding more than one chunk and one line in
 * memory. Empty lines are skipped (counted in `number` all the same).
 *
 * @example
 * for await (const line of readSegmentLines(nodeSpoolFiles, path)) decodeSpoolLine(line.text);
 */
export async function* readSegmentLines(
  files: SpoolFiles,
  path: string,
  from: SegmentPosition = { offset: 0, line: 0 },
  { chunkBytes = CHUNK_BYTES, maxLineBytes = MAX_LINE_BYTES }: ReadLimits = {},
): AsyncGenerator<SegmentLine> {
  const handle = await files.open(path, 'r');
  try {
    const chunk = Buffer.alloc(chunkBytes);
    let position = from.offset;
    let number = from.line;
    let parts: Buffer[] = [];
    let partBytes = 0;
    let tooLong = false;
    const line = (last: Buffer, end: number, torn: boolean): SegmentLine => {
      const text = tooLong ? '' : (parts.length > 0 ? Buffer.concat([...parts, last]) : last).toString('utf8');
      const result = { text, number: (number += 1), end, torn, tooLong };
      [parts, partBytes, tooLong] = [[], 0, false];
      return result;
    };
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
      if (bytesRead === 0) break;
      const view = chunk.subarray(0, bytesRead);
      let start = 0;
      for (let nl = view.indexOf(NEWLINE); nl !== -1; nl = view.indexOf(NEWLINE, start)) {
        const piece = view.subarray(start, nl);
        tooLong ||= partBytes + piece.length > maxLineBytes;
        const whole = partBytes + piece.length > 0 || tooLong;
        const next = line(piece, position + nl + 1, false);
        if (whole) yield next;
        start = nl + 1;
      }
      const rest = view.subarray(start);
      tooLong ||= partBytes + rest.length > maxLineBytes;
      if (tooLong) parts = [];
      else if (rest.length > 0) parts.push(Buffer.from(rest));
      partBytes += rest.length;
      position += bytesRead;
    }
    if (partBytes > 0) yield line(Buffer.alloc(0), position, true);
  } finally {
    await handle.close();
  }
}

/**
 * Size and number of (non-empty) lines of a segment, read in chunks.
 *
 * @example
 * const { bytes, lines } = await measureSegment(nodeSpoolFiles, path);
 */
export async function measureSegment(
  files: SpoolFiles,
  path: string,
  { chunkBytes = CHUNK_BYTES }: ReadLimits = {},
): Promise<{ bytes: number; lines: number }> {
  const handle = await files.open(path, 'r');
  try {
    const chunk = Buffer.alloc(chunkBytes);
    let [bytes, lines, open] = [0, 0, false];
    for (let read = 1; read > 0; bytes += read) {
      read = (await handle.read(chunk, 0, chunk.length, bytes)).bytesRead;
      let start = 0;
      for (let nl = chunk.indexOf(NEWLINE); nl !== -1 && nl < read; nl = chunk.indexOf(NEWLINE, start)) {
        if (open || nl > start) lines += 1;
        [open, start] = [false, nl + 1];
      }
      open ||= start < read;
    }
    return { bytes, lines: lines + (open ? 1 : 0) };
  } finally {
    await handle.close();
  }
}
