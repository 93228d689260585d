import { createHash } from 'node:crypto';

/**
 * The digest by which an erasure entry names the rows it erases in one archive
 * (`changes.erasure.archiveRows`): SHA-256 of the rows' ids, sorted, one a line, base64url. The
 * offline check accounts for rows under the entry's `archives` count only when the rows of the
 * archive erased under its erasure are exactly those (docs/LIFECYCLE.md, "Archives and erasure").
 *
 * @example
 * archiveRowsDigest(['0190…', '018f…']) === archiveRowsDigest(['018f…', '0190…']); // true
 */
export function archiveRowsDigest(ids: readonly string[]): string {
  return createHash('sha256')
    .update([...ids].sort().join('\n'))
    .digest('base64url');
}
