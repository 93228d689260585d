import { join } from 'node:path';
import { segmentSize } from './other-segments';
import { measureSegment } from './segment-reader';
import { parseSegmentName, type SegmentName } from './segment-name';
import { type SegmentState, segmentState } from './segment-replay';
import { type SpoolFiles } from './spool-files';
import { type SpoolOwner } from './spool-owner';

/** What {@link adoptSegments} needs of the spool. */
export interface AdoptionTerms {
  /** The name of this owner's segment an adopted one becomes. */
  nameFor: (segment: SegmentName) => string;
  /** Whether this owner holds a segment of that name already (or is creating it). */
  holds: (name: string) => boolean;
  /** The size a segment that cannot be measured counts as. */
  segmentBytes: number;
}

/**
 * Takes over the segments in `dir` that no live process owns: an older version's (no owner in the
 * name), those of an owner that closed (no record left), and those of an owner that is gone. Each
 * is renamed to `nameFor(it)`; a rename is atomic, so of two processes adopting at once each
 * segment goes to exactly one. A segment named for this owner that it does not hold is taken too:
 * an earlier rename that was given up at its deadline and landed later. Returns the adopted
 * segments by their new names, sized by `stat` (one that cannot be measured counts as
 * `segmentBytes`, a full segment, never as 0) and with their lines not counted yet (`null`):
 * {@link countAdoptedLines} reads them.
 *
 * @example
 * let counter = 0;
 * const adopted = await adoptSegments(dir, files, owner, {
 *   nameFor: (segment) => segmentName(segment.time, counter++, owner.id),
 *   holds: (name) => segments.has(name),
 *   segmentBytes: 8 << 20,
 * });
 */
export async function adoptSegments(
  dir: string,
  files: SpoolFiles,
  owner: SpoolOwner,
  { nameFor, holds, segmentBytes }: AdoptionTerms,
): Promise<Map<string, SegmentState>> {
  const names = (await files.readdir(dir)).sort();
  const owners = await owner.others(names);
  const now = Date.now();
  const adopted = new Map<string, SegmentState>();
  const take = async (name: string) => {
    // Gone since (removed by hand): nothing left to count, and replay reports it missing.
    const bytes = (await segmentSize(files, join(dir, name), segmentBytes)) ?? 0;
    adopted.set(name, segmentState({ bytes, lines: null }));
  };
  for (const name of names) {
    const segment = parseSegmentName(name);
    if (!segment) continue;
    if (segment.owner === owner.id) {
      if (!holds(name)) await take(name);
      continue;
    }
    if (segment.owner !== null && !owner.isGone(owners.get(segment.owner), now)) continue;
    const target = nameFor(segment);
    const taken = await files.rename(join(dir, name), join(dir, target)).then(
      () => true,
      () => false,
    );
    // Not taken: another process adopted it first, or the rename is late (a hung disk) and the
    // segment is counted under the name it ends up with until the next adoption takes it.
    if (taken) await take(target);
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
