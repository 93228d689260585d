/**
 * Stable codes of the errors the spool (and the quarantine, which shares its files) rejects with.
 *
 * @example
 * if (error instanceof DiskTimeoutError) console.log(error.code === SPOOL_ERROR_CODES.diskTimeout); // true
 */
export const SPOOL_ERROR_CODES = {
  read: 'AUDIT_SPOOL_READ',
  diskTimeout: 'AUDIT_DISK_TIMEOUT',
  segmentTaken: 'AUDIT_SPOOL_SEGMENT_TAKEN',
} as const;

/**
 * A replay that could not read or remove a spool segment (permissions, too many open files, a
 * failing disk), as opposed to an insert that failed: the segment stays on disk and in the counts,
 * and the next replay tries it again.
 *
 * @example
 * spool.replay(insert, 500, onRejected).catch((e: unknown) => e instanceof SpoolReadError && e.code); // 'AUDIT_SPOOL_READ'
 */
export class SpoolReadError extends Error {
  override readonly name = 'SpoolReadError';
  readonly code = SPOOL_ERROR_CODES.read;

  constructor(
    readonly file: string,
    override readonly cause: unknown,
  ) {
    super(`Audit spool segment ${file} could not be read or removed: ${(cause as { code?: string } | null)?.code ?? String(cause)}`);
  }
}

/**
 * A file operation that did not return within its deadline (`stalled`: not even begun, because an
 * earlier one on the same disk still has not returned). What the operation carried went on
 * without it; the operation itself may still complete later.
 *
 * @example
 * new DiskTimeoutError('fsync', 2000).message; // 'AUDIT_DISK_TIMEOUT: fsync did not return within 2000 ms'
 */
export class DiskTimeoutError extends Error {
  override readonly name = 'DiskTimeoutError';
  readonly code = SPOOL_ERROR_CODES.diskTimeout;

  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
    readonly stalled = false,
  ) {
    super(
      stalled
        ? `${SPOOL_ERROR_CODES.diskTimeout}: ${operation} not begun, an earlier file operation has not returned within ${timeoutMs} ms`
        : `${SPOOL_ERROR_CODES.diskTimeout}: ${operation} did not return within ${timeoutMs} ms`,
    );
  }
}

/**
 * An append whose segment another process adopted while this one had it open (it took this one for
 * dead: a lease that looked expired): the lines may have landed after that process replayed and
 * deleted the segment, so they are not kept there. The spool writes them once more to a new segment
 * (a replay of both copies inserts each entry once); a second such refusal refuses them.
 *
 * @example
 * new SegmentTakenError('audit-…-0a1b2c3d4e5f.ndjson').code; // 'AUDIT_SPOOL_SEGMENT_TAKEN'
 */
export class SegmentTakenError extends Error {
  override readonly name = 'SegmentTakenError';
  readonly code = SPOOL_ERROR_CODES.segmentTaken;

  constructor(readonly file: string) {
    super(`${SPOOL_ERROR_CODES.segmentTaken}: spool segment ${file} was adopted by another process while open`);
  }
}
