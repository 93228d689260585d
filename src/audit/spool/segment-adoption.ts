import { join } from 'node:path';
import { measureSegment } from './segment-reader';
import { parseSegmentName, type SegmentName } from './segment-name';
import { type SegmentState, segmentState } from './segment-replay';
import { type SpoolFiles } from './spool-files';
import { type SpoolOwner } from './spool-owner';

/**
 * Takes over the segments in `dir` that no live process owns: an older version's (no owner in the
 * name), those of an owner that closed (no record left), and those of an owner that is gone. Each
 * is renamed to `nameFor(it)`; a rename is atomic, so of two processes adopting at once each
 * segment goes to exactly one. Returns the adopted segments, measured, by their new names.
 *
 * @example
 * let counter = 0;
 * const adopted = await adoptSegments(dir, files, owner, (s) => segmentName(s.time, counter++, owner.id));
 */
export async function adoptSegments(
  dir: string,
  files: SpoolFiles,
  owner: SpoolOwner,
  nameFor: (segment: SegmentName) => string,
): Promise<Map<string, SegmentState>> {
  const names = (await files.readdir(dir)).sort();
  const owners = await owner.others(names);
  const now = Date.now();
  const adopted = new Map<string, SegmentState>();
  for (const name of names) {
    const segment = parseSegmentName(name);
    if (!segment || segment.owner === owner.id) continue;
    if (segment.owner !== null && !owner.isGone(owners.get(segment.owner), now)) continue;
    const target = nameFor(segment);
    const taken = await files.rename(join(dir, name), join(dir, target)).then(
      () => true,
      () => false,
    );
    // Not taken: another process adopted it first.
    if (!taken) continue;
    const stats = await measureSegment(files, join(dir, target)).catch(() => ({ bytes: 0, lines: 0 }));
    adopted.set(target, segmentState(stats));
  }
  for (const [id, record] of owners) if (owner.isGone(record, now)) await owner.bury(id);
  return adopted;
}
