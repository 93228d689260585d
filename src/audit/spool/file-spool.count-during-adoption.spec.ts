import { mkdir, mkdtemp, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { FileSpool } from './file-spool';
import { nodeSpoolFiles, type SpoolFiles } from './spool-files';
import { encodeSpoolLine } from './spool-line';

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord => {
  const id = String(n).padStart(5, '0');
  return normalizer.normalize({ action: 'nda_created', entityId: `nda-${id}`, changes: { id, pad: 'x'.repeat(900) } }).record;
};
const KiB = 1024;
/** `fired`, or `ms` from now, whichever comes first. */
const within = (fired: Promise<void>, ms: number): Promise<void> => {
  let timer: NodeJS.Timeout | undefined;
  const elapsed = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return Promise.race([fired, elapsed]).finally(() => clearTimeout(timer));
};

/** A promise and the function that settles it. */
const signal = () => {
  let fire = () => undefined as void;
  const fired = new Promise<void>((resolve) => (fire = resolve));
  return { fire, fired };
};

// src/audit/spool/file-spool.ts: "`maxBytes` bounds the directory: this process's segments … and
// every other owner's … no segment is begun without such a count"; docs/CONFIGURATION.md
// (`spoolMaxBytes`): N processes may pass it "by one segment each but one", what each wrote since
// another last counted it. Here the other process wrote its segment before this one opened and then
// closed: nothing was written since, so the bound holds exactly. The heartbeat adopts that segment
// (renames it to this owner) while an append counts the directory before a new segment. Counts and
// adoptions are steps of one accounting, taken in turn: the count sees the segment either under
// its old owner (measured by stat) or, once adopted, among this owner's, never in neither. The
// count's measure of that segment is held back until the adoption renamed it (at most 1 s; with a
// lease of 300 ms the heartbeat comes every 100 ms), the interleaving that lost it before.
describe('FileSpool: the count before a new segment, while the heartbeat adopts', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'spool-adopting-')), 'audit');
    await mkdir(dir, { recursive: true });
  });
  afterEach(() => rm(join(dir, '..'), { recursive: true, force: true }));

  it('counts a segment the heartbeat adopts meanwhile exactly once', async () => {
    const other = '0000000000dd';
    await writeFile(
      join(dir, `${other}.owner`),
      JSON.stringify({ id: other, hostname: 'other-host', pid: 1, pidNamespace: null, heartbeatAt: Date.now() }),
    );
    const theirs = `audit-${String(Date.now()).padStart(13, '0')}-000000-${other}.ndjson`;
    await writeFile(join(dir, theirs), Array.from({ length: 40 }, (_, n) => encodeSpoolLine(record(5000 + n))).join(''));

    let armed = false;
    const renamed = signal();
    const appended = signal();
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      // The append's count measures their segment once the adoption has renamed it, if it can.
      stat: async (path) => {
        if (armed && basename(path) === theirs) await within(renamed.fired, 1000);
        return nodeSpoolFiles.stat(path);
      },
      rename: async (from, to) => {
        await nodeSpoolFiles.rename(from, to);
        if (basename(from) === theirs) renamed.fire();
      },
      // The adoption measures the segment it took after the append.
      open: async (path, flags, mode) => {
        if (armed && flags === 'r' && path.endsWith('.ndjson')) await appended.fired;
        return nodeSpoolFiles.open(path, flags, mode);
      },
    };
    const spool = await FileSpool.open(dir, { maxBytes: 64 * KiB, segmentBytes: 64 * KiB, leaseMs: 300, files });
    // The other process closes: its record goes, its segment stays to be adopted at the next heartbeat.
    await unlink(join(dir, `${other}.owner`));
    armed = true;
    const result = await spool.append(Array.from({ length: 50 }, (_, n) => record(n)));
    appended.fire();

    let onDisk = 0;
    for (const file of await readdir(dir)) if (file.endsWith('.ndjson')) onDisk += (await stat(join(dir, file))).size;
    await spool.close();
    expect(result.dropped.length).toBeGreaterThan(0);
    expect(onDisk).toBeLessThanOrEqual(64 * KiB);
  });
});
