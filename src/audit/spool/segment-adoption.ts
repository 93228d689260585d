import { join } from 'node:path';
import { segmentSize } from './other-segments';
import { measureSegment } from './segment-reader';
import { parseSegmentName, type SegmentName } from './segment-name';
import { type SegmentState, segmentState } from './segment-replay';
import { type SpoolFiles } from './spool-files';
import { type SpoolOwner } from './spool-owner';

/**
 * Takes over the segments in `dir` that no live process owns: an older version's (no owner in the
 * name), those of an owner that closed (no record left), and those of an owner that is gone. Each
 * is renamed to `nameFor(it)`; a rename is atomic, so of two processes adopting at once each
 * segment goes to exactly one. Returns the adopted segments by their new names, sized by `stat`
 * (one that cannot be measured counts as `segmentBytes`, a full segment, never as 0) and with their
 * lines not counted yet (`null`): {@link countAdoptedLines} reads them.
 *
 * @example
 * let counter = 0;
 * const adopted = await adoptSegments(dir, files, owner, (s) => segmentName(s.time, counter++, owner.id), 8 << 20);
 */
export async function adoptSegments(
  dir: string,
  files: SpoolFiles,
  owner: SpoolOwner,
  nameFor: (segment: SegmentName) => string,
  segmentBytes: number,
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
    // Gone since (removed by hand): nothing left to count, and replay reports it missing.
    const bytes = (await segmentSize(files, join(dir, target), segmentBytes)) ?? 0;
    adopted.set(target, segmentState({ bytes, lines: null }));
  }
  for (const [id, record] of owners) if (owner.isGone(record, now)) await owner.bury(id);
  return adopted;
}

/**
 * Reads the segments of `segments` whose lines are not counted yet (`lines: null`), but for
 * `skip`, and sets their lines and size; one that cannot be read keeps what it had, to be read
 * again next time.
 *
 * @example
 * await countAdoptedLines(files, dir, segments, current?.name);
 */
export async function countAdoptedLines(files: SpoolFiles, dir: string, segments: Map<string, SegmentState>, skip?: string): Promise<void> {
  for (const [name, state] of [...segments]) {
    if (state.lines !== null || name === skip) continue;
    const measured = await measureSegment(files, join(dir, name)).catch(() => undefined);
    if (!measured || state.lines !== null) continue;
    state.bytes = measured.bytes;
    state.lines = measured.lines;
  }
}
