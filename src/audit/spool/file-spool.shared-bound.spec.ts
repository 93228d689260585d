import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { FileSpool } from './file-spool';
import { nodeSpoolFiles, type SpoolFiles } from './spool-files';
import { encodeSpoolLine } from './spool-line';

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
/** Records whose lines all have the same length. */
const record = (n: number): AuditRecord => {
  const id = String(n).padStart(5, '0');
  return normalizer.normalize({ action: 'nda_created', entityId: `nda-${id}`, changes: { id, pad: 'x'.repeat(900) } }).record;
};
const lineBytes = Buffer.byteLength(encodeSpoolLine(record(0)));
const KiB = 1024;

// `spoolMaxBytes` bounds the directory, which other processes may share: what they left there, or
// still write, counts as well as this process's own segments. The others are planted on disk here as
// another process leaves them (an owner record and its segments); with a real second process:
// file-spool.shared-bound.process.spec.ts.
describe('FileSpool: spoolMaxBytes holds for a shared directory', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'spool-bound-')), 'audit');
    await mkdir(dir, { recursive: true });
  });
  afterEach(() => {
    jest.useRealTimers();
    return rm(join(dir, '..'), { recursive: true, force: true });
  });

  /** A live process on another host: its record is fresh, so its segments are not adopted. */
  const liveOwner = (id: string, heartbeatAt = Date.now()) =>
    writeFile(join(dir, `${id}.owner`), JSON.stringify({ id, hostname: 'other-host', pid: 1, pidNamespace: null, heartbeatAt }));
  /** A segment of `owner` holding `count` lines. */
  const plant = async (owner: string, number: number, count: number) => {
    const name = `audit-${String(Date.now()).padStart(13, '0')}-${String(number).padStart(6, '0')}-${owner}.ndjson`;
    await writeFile(join(dir, name), Array.from({ length: count }, (_, n) => encodeSpoolLine(record(5000 + n))).join(''));
    return name;
  };
  const onDisk = async () => {
    let bytes = 0;
    for (const name of await readdir(dir)) if (name.endsWith('.ndjson')) bytes += (await stat(join(dir, name))).size;
    return bytes;
  };
  /** Appends one record at a time until one is refused; returns how many were kept and the refusal. */
  const fill = async (spool: FileSpool, from = 0) => {
    for (let n = from; n < from + 1000; n += 1) {
      const result = await spool.append([record(n)]);
      if (result.dropped.length > 0) return { kept: n - from, refusal: result };
      expect(result.kept).toHaveLength(1);
    }
    throw new Error('never refused');
  };
  /** The file system, counting the listings of the directory (one a count; its quarantine folder is listed with it) and the files opened to read. */
  const counting = () => {
    const calls = { readdir: 0, read: 0 };
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      readdir: (path) => ((calls.readdir += path === dir ? 1 : 0), nodeSpoolFiles.readdir(path)),
      open: (path, flags, mode) => ((calls.read += flags === 'r' && path !== dir ? 1 : 0), nodeSpoolFiles.open(path, flags, mode)),
    };
    return { calls, files };
  };

  it("counts a live sharer's segments: refuses past the bound in all, as spool_full, and leaves the sharer's files as they were", async () => {
    await liveOwner('0000000000aa');
    const theirs = await plant('0000000000aa', 0, 40);
    const before = await readFile(join(dir, theirs));
    const spool = await FileSpool.open(dir, { maxBytes: 64 * KiB, segmentBytes: 64 * KiB, leaseMs: 60_000 });

    const { kept, refusal } = await fill(spool);
    expect(refusal).toEqual({ kept: [], dropped: [expect.objectContaining({ entityId: record(kept).entityId })], error: 'spool_full' });
    expect(kept).toBe(Math.floor((64 * KiB - before.length) / lineBytes));
    expect(await onDisk()).toBeLessThanOrEqual(64 * KiB);
    expect(await readFile(join(dir, theirs))).toEqual(before);
    expect(spool.bytes).toBe(kept * lineBytes);
    await spool.close();
  });

  it('counts the segments of a sharer that is gone, adopted or not yet, until they are replayed', async () => {
    // One gone before this process opened (adopted at once), one alive then and gone since.
    await liveOwner('0000000000bb', Date.now() - 120_000);
    await plant('0000000000bb', 0, 20);
    await liveOwner('0000000000cc');
    await plant('0000000000cc', 0, 20);
    const spool = await FileSpool.open(dir, { maxBytes: 64 * KiB, segmentBytes: 8 * KiB, leaseMs: 60_000 });
    expect(spool.entries).toBe(20);
    await unlink(join(dir, '0000000000cc.owner'));

    const { kept } = await fill(spool);
    expect(kept).toBe(Math.floor((64 * KiB - 40 * lineBytes) / lineBytes));
    expect(await onDisk()).toBeLessThanOrEqual(64 * KiB);

    // Its replay adopts the second one's segments too; once replayed, they no longer count.
    const inserted: string[] = [];
    await spool.replay(
      async (records) => void inserted.push(...records.map((r) => r.entityId!)),
      100,
      () => undefined,
    );
    expect(inserted).toHaveLength(40 + kept);
    expect((await fill(spool, 2000)).kept).toBe(Math.floor((64 * KiB) / lineBytes));
    await spool.close();
  });

  it("re-reads the sharers' segments before each new segment (the first too), not at each append: a sharer's growth counts from the next one", async () => {
    await liveOwner('0000000000dd');
    const theirs = await plant('0000000000dd', 0, 1);
    const { calls, files } = counting();
    const spool = await FileSpool.open(dir, { maxBytes: 64 * KiB, segmentBytes: 8 * lineBytes, leaseMs: 60_000, files });
    const atOpen = { ...calls };

    // The sharer writes 30 lines more; this process goes on in its open segment, then begins another.
    expect((await spool.append([record(0)])).kept).toHaveLength(1);
    const opened = { ...calls };
    expect(opened.readdir - atOpen.readdir).toBe(1);
    await writeFile(join(dir, theirs), Array.from({ length: 30 }, (_, n) => encodeSpoolLine(record(100 + n))).join(''), { flag: 'a' });
    for (let n = 1; n < 8; n += 1) expect((await spool.append([record(n)])).kept).toHaveLength(1);
    expect(calls).toEqual(opened);

    const { kept } = await fill(spool, 8);
    // Once per segment begun (and once more if the refusal found the last one full).
    expect(calls.readdir - opened.readdir).toBeLessThanOrEqual(Math.ceil((8 + kept) / 8));
    expect(8 + kept).toBe(Math.floor((64 * KiB) / lineBytes) - 31);
    expect(await onDisk()).toBeLessThanOrEqual(64 * KiB);
    await spool.close();
  });

  it('makes no file-system call for refused appends, and counts again at most once a second: room a sharer freed is used', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    await liveOwner('0000000000ee');
    const theirs = [await plant('0000000000ee', 0, 20), await plant('0000000000ee', 1, 20)];
    const { calls, files } = counting();
    const spool = await FileSpool.open(dir, { maxBytes: 64 * KiB, segmentBytes: 64 * KiB, leaseMs: 60_000, files });
    const { kept } = await fill(spool);
    expect(kept).toBe(Math.floor((64 * KiB - 40 * lineBytes) / lineBytes));

    // The sharer's replay has removed one of its segments; the count is that of a moment ago.
    await unlink(join(dir, theirs[0]));
    const before = { ...calls };
    for (let n = 0; n < 50; n += 1) expect((await spool.append([record(1000 + n)])).error).toBe('spool_full');
    expect(calls).toEqual(before);

    jest.setSystemTime(Date.now() + 1000);
    expect((await fill(spool, 2000)).kept).toBe(20);
    expect(calls.readdir - before.readdir).toBe(1);
    expect(await onDisk()).toBeLessThanOrEqual(64 * KiB);
    await spool.close();
  });

  it('counts a segment renamed by an adoption while it was being counted, under its new name', async () => {
    await liveOwner('0000000000ff');
    await liveOwner('000000000011');
    const theirs = await plant('0000000000ff', 0, 40);
    let listings = 0;
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      // At open, right after this process lists the directory to count the others (its first listing
      // is the adoption's), a third process adopts the sharer's segment.
      readdir: async (path) => {
        const names = await nodeSpoolFiles.readdir(path);
        listings += 1;
        if (listings === 2) {
          await rename(join(dir, theirs), join(dir, theirs.replace('0000000000ff', '000000000011')));
        }
        return names;
      },
    };
    const spool = await FileSpool.open(dir, { maxBytes: 64 * KiB, segmentBytes: 64 * KiB, leaseMs: 60_000, files });
    expect(await readdir(dir)).not.toContain(theirs);
    const { kept } = await fill(spool);
    expect(kept).toBe(Math.floor((64 * KiB - 40 * lineBytes) / lineBytes));
    expect(await onDisk()).toBeLessThanOrEqual(64 * KiB);
    await spool.close();
  });

  it('begins no segment while the directory cannot be listed to count the sharers: such appends are refused as spool_error', async () => {
    await liveOwner('000000000022');
    await plant('000000000022', 0, 1);
    let denied = false;
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      readdir: (path) =>
        denied ? Promise.reject(Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' })) : nodeSpoolFiles.readdir(path),
    };
    const spool = await FileSpool.open(dir, { maxBytes: 64 * KiB, segmentBytes: 2 * lineBytes, leaseMs: 60_000, files });
    const records = [0, 1, 2, 3, 4].map(record);
    const refused = (r: AuditRecord) => ({ kept: [], dropped: [r], error: 'spool_error: EMFILE: too many open files' });
    denied = true;
    expect(await spool.append([records[0]])).toEqual(refused(records[0]));
    denied = false;
    expect((await spool.append(records.slice(1, 3))).kept).toHaveLength(2);
    // The segment is full: the next one waits for a count.
    denied = true;
    expect(await spool.append([records[3]])).toEqual(refused(records[3]));
    denied = false;
    expect((await spool.append([records[4]])).kept).toEqual([records[4]]);
    expect([spool.entries, (await readdir(dir)).filter((n) => n.endsWith('.ndjson')).length]).toEqual([3, 3]);
    await spool.close();
  });
});
