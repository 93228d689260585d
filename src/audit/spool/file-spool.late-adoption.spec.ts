import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
// Long enough for a healthy call on a busy host, short enough to keep the tests quick.
const TIMEOUT_MS = 1000;

// With `timeoutMs` (the module's `writeTimeoutMs`), an adoption's rename on a hung disk is given up
// at its deadline, but the rename may still land later: the segment is then named for this owner
// without being among its segments. It must still count against `spoolMaxBytes` (the directory's
// total, docs/CONFIGURATION.md) and still be replayed by this process, not left until a restart.
describe('FileSpool: an adoption whose rename lands after its deadline', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'spool-late-rename-')), 'audit');
    await mkdir(dir, { recursive: true });
  });
  afterEach(() => rm(join(dir, '..'), { recursive: true, force: true }));

  /** Opens a spool whose adoption of a gone owner's segment (40 entries) hangs past its deadline, then lands. */
  const openWithLateRename = async (maxBytes: number) => {
    const gone = '0000000000aa';
    await writeFile(
      join(dir, `${gone}.owner`),
      JSON.stringify({ id: gone, hostname: 'other-host', pid: 1, pidNamespace: null, heartbeatAt: Date.now() - 600_000 }),
    );
    const name = `audit-${String(Date.now()).padStart(13, '0')}-000000-${gone}.ndjson`;
    await writeFile(join(dir, name), Array.from({ length: 40 }, (_, n) => encodeSpoolLine(record(5000 + n))).join(''));
    let release = () => undefined as void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let landed = () => undefined as void;
    const renamed = new Promise<void>((resolve) => (landed = resolve));
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      rename: async (from, to) => {
        if (!from.endsWith(name)) return nodeSpoolFiles.rename(from, to);
        await released;
        await nodeSpoolFiles.rename(from, to);
        landed();
      },
    };
    const opening = FileSpool.open(dir, { maxBytes, segmentBytes: 64 * KiB, leaseMs: 60_000, timeoutMs: TIMEOUT_MS, files });
    const spool = await opening.finally(release);
    await renamed;
    // The disk's gate lets calls through again once the hung rename has returned.
    await new Promise((resolve) => setImmediate(resolve));
    const listed = (await readdir(dir)).filter((file) => file.endsWith('.ndjson'));
    expect(listed).toHaveLength(1);
    expect(listed[0]).not.toBe(name);
    return spool;
  };

  it('counts the segment against spoolMaxBytes', async () => {
    const spool = await openWithLateRename(64 * KiB);
    try {
      let refused = false;
      for (let n = 0; n < 200 && !refused; n += 1) refused = (await spool.append([record(n)])).dropped.length > 0;
      expect(refused).toBe(true);
      let onDisk = 0;
      for (const file of await readdir(dir)) if (file.endsWith('.ndjson')) onDisk += (await stat(join(dir, file))).size;
      expect(onDisk).toBeLessThanOrEqual(64 * KiB);
    } finally {
      await spool.close();
    }
  });

  it('replays its entries', async () => {
    const spool = await openWithLateRename(1024 * KiB);
    try {
      const inserted: string[] = [];
      await spool.replay(
        (records) => Promise.resolve(void inserted.push(...records.map((r) => r.entityId as string))),
        500,
        () => undefined,
      );
      expect(inserted).toEqual(Array.from({ length: 40 }, (_, n) => `nda-${String(5000 + n).padStart(5, '0')}`));
      expect((await readdir(dir)).filter((file) => file.endsWith('.ndjson'))).toEqual([]);
    } finally {
      await spool.close();
    }
  });
});
