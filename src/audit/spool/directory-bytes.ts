import { join } from 'node:path';
import { otherSegmentBytes, segmentSize } from './other-segments';
import { type SpoolFiles } from './spool-files';

/**
 * The folder under `spoolDir` that holds quarantine files: the spool never reads them, but counts
 * them in its bound (`spoolMaxBytes` is the directory's total).
 *
 * @example
 * const folder = join(spoolDir, QUARANTINE_DIR); // '/var/lib/app/audit-spool/quarantine'
 */
export const QUARANTINE_DIR = 'quarantine';

/**
 * The bytes on disk of the quarantine files under `dir` (`<dir>/quarantine/*.ndjson`, any
 * process's), each measured by `stat`. None without the folder; a file, or a folder, that cannot be
 * measured counts as `unmeasured` (the spool passes a full segment), never as 0.
 *
 * @example
 * const bytes = await quarantineBytes(files, '/var/lib/app/audit-spool', 8 << 20);
 */
export async function quarantineBytes(files: SpoolFiles, dir: string, unmeasured: number): Promise<number> {
  const folder = join(dir, QUARANTINE_DIR);
  let names: string[];
  try {
    names = await files.readdir(folder);
  } catch (error) {
    return (error as { code?: string } | null)?.code === 'ENOENT' ? 0 : unmeasured;
  }
  let bytes = 0;
  for (const name of names) if (name.endsWith('.ndjson')) bytes += (await segmentSize(files, join(folder, name), unmeasured)) ?? 0;
  return bytes;
}

/**
 * All that `spoolMaxBytes` bounds in `dir`, by `stat`: every owner's segments and the quarantine
 * files (one that cannot be measured counts as `segmentBytes`). Rejects when `dir` cannot be listed.
 *
 * @example
 * const used = await directoryBytes(files, '/var/lib/app/audit-spool', 8 << 20);
 * if (used + next.length > maxBytes) throw new Error('spool_full');
 */
export async function directoryBytes(files: SpoolFiles, dir: string, segmentBytes: number): Promise<number> {
  const segments = await otherSegmentBytes(files, dir, () => false, segmentBytes);
  return segments + (await quarantineBytes(files, dir, segmentBytes));
}
