import { join } from 'node:path';
import { parseSegmentName } from './segment-name';
import { type SpoolFiles } from './spool-files';

/** Listings of the directory at most, when segments keep vanishing between a listing and their measure. */
const PASSES = 3;

/**
 * The bytes on disk of the segments in `dir` that are not `owner`'s: those of the other processes
 * sharing the directory (live, or gone and not yet adopted) and of older versions. It only reads:
 * another owner's segment is never opened for writing here. A segment that vanishes between the
 * listing and its measure (replayed, or renamed by an adoption) has the directory listed again, so
 * that a renamed segment is counted under its new name.
 *
 * @example
 * const others = await otherSegmentBytes(files, dir, owner.id); // 131072
 */
export async function otherSegmentBytes(files: SpoolFiles, dir: string, owner: string): Promise<number> {
  for (let pass = 1; ; pass += 1) {
    let bytes = 0;
    let vanished = false;
    for (const name of await files.readdir(dir)) {
      const segment = parseSegmentName(name);
      if (!segment || segment.owner === owner) continue;
      const size = await sizeOf(files, join(dir, name));
      if (size === undefined) vanished = true;
      else bytes += size;
    }
    if (!vanished || pass === PASSES) return bytes;
  }
}

/** The size of the file at `path`, or `undefined` when it is gone. */
async function sizeOf(files: SpoolFiles, path: string): Promise<number | undefined> {
  const handle = await files
    .open(path, 'r')
    .catch((error: { code?: string } | null) => (error?.code === 'ENOENT' ? undefined : Promise.reject(error)));
  if (!handle) return undefined;
  try {
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}
