/** Stable codes of the errors the spool rejects with. */
export const SPOOL_ERROR_CODES = { read: 'AUDIT_SPOOL_READ' } as const;

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
