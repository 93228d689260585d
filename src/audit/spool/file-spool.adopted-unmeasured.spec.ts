import { mkdir, mkdtemp, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { type SpoolRejection } from './audit-spool';
import { FileSpool } from './file-spool';
import { nodeSpoolFiles, type SpoolFiles } from './spool-files';
import { encodeSpoolLine } from './spool-line';

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord => {
  const id = String(n).padStart(5, '0');
  return normalizer.normalize({ action: 'nda_created', entityId: `nda-${id}`, changes: { id, pad: 'x'.repeat(900) } }).record;
};
const KiB = 1024;
const emfile = () => Promise.reject(Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' }));

// A gone process's segment is adopted (renamed to this owner) and then read to count its lines.
// docs/CONFIGURATION.md (`spoolMaxBytes`): the bound is the directory's total, and a segment that
// cannot be measured counts as a full segment. docs/FAILURES.md: each line of a segment that vanishes
// before replay is reported (`spool_segment_missing`). So an adopted segment that cannot be read
// (EMFILE, a hung disk) still counts against the bound, by its size or as a full segment, never as 0
// bytes; its lines are counted again later; and if it vanishes before anyone could count them, the
// loss is still reported, as "unknown count".
describe('FileSpool: an adopted segment that could not be read', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'spool-adopted-')), 'audit');
    await mkdir(dir, { recursive: true });
  });
  afterEach(() => rm(join(dir, '..'), { recursive: true, force: true }));

  /** A gone owner (its lease long expired) with one segment of 40 entries; returns the segment's name. */
  const goneOwnerSegment = async (owner: string, first: number) => {
    await writeFile(
      join(dir, `${owner}.owner`),
      JSON.stringify({ id: owner, hostname: 'other-host', pid: 1, pidNamespace: null, heartbeatAt: Date.now() - 600_000 }),
    );
    const name = `audit-${String(Date.now()).padStart(13, '0')}-000000-${owner}.ndjson`;
    await writeFile(join(dir, name), Array.from({ length: 40 }, (_, n) => encodeSpoolLine(record(first + n))).join(''));
    return name;
  };
  /** The first read of a segment meets EMFILE; every later call works. */
  const failingFirstRead = () => {
    const seen = { failed: false };
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      open: (path, flags, mode) => {
        if (seen.failed || flags !== 'r' || !path.endsWith('.ndjson')) return nodeSpoolFiles.open(path, flags, mode);
        seen.failed = true;
        return emfile();
      },
    };
    return { files, seen };
  };
  const segmentBytesOnDisk = async () => {
    let bytes = 0;
    for (const file of await readdir(dir)) if (file.endsWith('.ndjson')) bytes += (await stat(join(dir, file))).size;
    return bytes;
  };
  const appendUntilRefused = async (spool: FileSpool) => {
    for (let n = 0; n < 400; n += 1) if ((await spool.append([record(n)])).dropped.length > 0) return;
    throw new Error('never refused');
  };

  it('keeps the directory within spoolMaxBytes when the adopted segment could not be read (its size by stat)', async () => {
    await goneOwnerSegment('0000000000bb', 5000);
    const { files, seen } = failingFirstRead();
    const spool = await FileSpool.open(dir, { maxBytes: 64 * KiB, segmentBytes: 64 * KiB, leaseMs: 60_000, files });
    try {
      expect(seen.failed).toBe(true);
      await appendUntilRefused(spool);
      expect(await segmentBytesOnDisk()).toBeLessThanOrEqual(64 * KiB);
    } finally {
      await spool.close();
    }
  });

  it('counts an adopted segment that can be neither read nor measured as a full segment, never as 0', async () => {
    const name = await goneOwnerSegment('0000000000ee', 7000);
    let adoptedPath = '';
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      rename: async (from, to) => {
        await nodeSpoolFiles.rename(from, to);
        if (from.endsWith(name)) adoptedPath = to;
      },
      stat: (path) => (path === adoptedPath ? emfile() : nodeSpoolFiles.stat(path)),
      open: (path, flags, mode) => (path === adoptedPath && flags === 'r' ? emfile() : nodeSpoolFiles.open(path, flags, mode)),
    };
    const adoptedBytes = (await stat(join(dir, name))).size;
    // Smaller than a segment: counted as one, the bound holds with room to spare.
    expect(adoptedBytes).toBeLessThan(64 * KiB);
    const spool = await FileSpool.open(dir, { maxBytes: 128 * KiB, segmentBytes: 64 * KiB, leaseMs: 60_000, files });
    try {
      expect(adoptedPath).not.toBe('');
      await appendUntilRefused(spool);
      const onDisk = await segmentBytesOnDisk();
      expect(onDisk).toBeLessThanOrEqual(128 * KiB);
      // What this process wrote left room for a full segment, not for the adopted one's real size.
      expect(onDisk - adoptedBytes).toBeLessThanOrEqual(64 * KiB);
    } finally {
      await spool.close();
    }
  });

  it('reports the loss as "unknown count" when the segment vanishes before its lines could be counted', async () => {
    await goneOwnerSegment('0000000000cc', 6000);
    const { files, seen } = failingFirstRead();
    const spool = await FileSpool.open(dir, { maxBytes: 1024 * KiB, segmentBytes: 64 * KiB, leaseMs: 60_000, files });
    expect(seen.failed).toBe(true);
    const adopted = (await readdir(dir)).filter((file) => file.endsWith('.ndjson'));
    expect(adopted).toHaveLength(1);
    await unlink(join(dir, adopted[0]));

    const rejected: SpoolRejection[] = [];
    const inserted = await spool.replay(
      () => Promise.resolve(),
      500,
      (rejection) => rejected.push(rejection),
    );
    await spool.close();
    expect(inserted).toBe(0);
    expect(rejected).toEqual([{ file: join(dir, adopted[0]), line: 1, reason: 'segment_missing', text: 'unknown count' }]);
  });

  it('counts the lines again later, and then reports each of them when the segment vanishes', async () => {
    await goneOwnerSegment('0000000000dd', 8000);
    const { files, seen } = failingFirstRead();
    const spool = await FileSpool.open(dir, { maxBytes: 1024 * KiB, segmentBytes: 64 * KiB, leaseMs: 60_000, files });
    try {
      expect(seen.failed).toBe(true);
      expect(spool.entries).toBe(0);
      // A replay while the database is still down: it counts the lines first, then its insert fails.
      const down = new Error('connect ECONNREFUSED');
      await expect(
        spool.replay(
          () => Promise.reject(down),
          500,
          () => undefined,
        ),
      ).rejects.toBe(down);
      expect(spool.entries).toBe(40);

      const adopted = (await readdir(dir)).filter((file) => file.endsWith('.ndjson'));
      await unlink(join(dir, adopted[0]));
      const rejected: SpoolRejection[] = [];
      await spool.replay(
        () => Promise.resolve(),
        500,
        (rejection) => rejected.push(rejection),
      );
      expect(rejected.map((r) => [r.line, r.reason])).toEqual(Array.from({ length: 40 }, (_, n) => [n + 1, 'segment_missing']));
    } finally {
      await spool.close();
    }
  });
});
