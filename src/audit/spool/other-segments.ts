import { join } from 'node:path';
import { parseSegmentName } from './segment-name';
import { type SpoolFiles } from './spool-files';

/** Listings of the directory at most, when segments keep vanishing between a listing and their measure. */
const PASSES = 3;

/**
 * The bytes on disk of the segments in `dir` that are not `mine`: those of the other processes
 * sharing the directory (live, or gone and not yet adopted), of older versions, and any named for
 * this owner that it does not hold (an adoption's rename that landed after its deadline). Each is measured
 * by `stat` on its path, never opened. A segment that vanishes between the listing and its measure
 * (replayed, or renamed by another process's adoption) has the directory listed again, so that a
 * renamed segment is counted under its new name; one still vanishing at the last listing, and one
 * that cannot be measured for another reason (EACCES: another user's file, EMFILE, a hung disk),
 * counts as one full segment of `segmentBytes`, never as 0. Only a directory that cannot be listed
 * fails the count.
 *
 * @example
 * const others = await otherSegmentBytes(files, dir, (name) => segments.has(name), 8 << 20); // 131072
 */
export async function otherSegmentBytes(
  files: SpoolFiles,
  dir: string,
  mine: (name: string) => boolean,
  segmentBytes: number,
): Promise<number> {
  for (let pass = 1; ; pass += 1) {
    let bytes = 0;
    let vanished = false;
    for (const name of await files.readdir(dir)) {
      if (!parseSegmentName(name) || mine(name)) continue;
      const size = await segmentSize(files, join(dir, name), segmentBytes);
      if (size !== undefined) bytes += size;
      else if (pass < PASSES) vanished = true;
      else bytes += segmentBytes;
    }
    if (!vanished) return bytes;
  }
}

/**
 * The size of the segment at `path` by `stat`: `undefined` when it is gone, `unmeasured` when it
 * cannot be measured (any other error).
 *
 * @example
 * const bytes = (await segmentSize(files, join(dir, name), segmentBytes)) ?? 0;
 */
export function segmentSize(files: SpoolFiles, path: string, unmeasured: number): Promise<number | undefined> {
  return files.stat(path).then(
    ({ size }) => size,
    (error: { code?: string } | null) => (error?.code === 'ENOENT' ? undefined : unmeasured),
  );
}
