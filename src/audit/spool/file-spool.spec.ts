import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { FileSpool } from './file-spool';
import { nodeSpoolFiles, type SpoolFiles } from './spool-files';
import { type SpoolRejection } from './audit-spool';

const normalizer = new AuditEntryNormalizer(['password'], 64 * 1024);
const record = (n: number): AuditRecord =>
  normalizer.normalize({ action: 'nda_created', entityId: `nda-${n}`, changes: { n, pad: 'x'.repeat(200) } }).record;
const limits = { maxBytes: 1024 * 1024, segmentBytes: 64 * 1024 };

describe('FileSpool', () => {
  let dir: string;
  beforeEach(async () => (dir = join(await mkdtemp(join(tmpdir(), 'spool-')), 'audit')));
  afterEach(() => rm(join(dir, '..'), { recursive: true, force: true }));

  const segments = async () => (await readdir(dir)).filter((n) => n.endsWith('.ndjson')).sort();
  const replayAll = async (spool: FileSpool) => {
    const inserted: AuditRecord[] = [];
    const rejected: SpoolRejection[] = [];
    await spool.replay(
      async (records) => void inserted.push(...records),
      100,
      (r) => rejected.push(r),
    );
    return { inserted, rejected };
  };

  it('keeps appended records on disk, private to the owner, and replays them once', async () => {
    const spool = await FileSpool.open(dir, limits);
    const records = [record(1), record(2), record(3)];
    expect(await spool.append(records)).toEqual({ kept: records, dropped: [] });
    expect(spool.entries).toBe(3);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    for (const name of await segments()) expect((await stat(join(dir, name))).mode & 0o777).toBe(0o600);

    const reopened = await FileSpool.open(dir, limits);
    expect(reopened.entries).toBe(3);
    const { inserted, rejected } = await replayAll(reopened);
    expect(inserted).toEqual(records);
    expect(rejected).toEqual([]);
    expect(await segments()).toEqual([]);
    expect(reopened.entries).toBe(0);
    await spool.close();
  });

  it('takes concurrent appends in order and rotates segments by size', async () => {
    const spool = await FileSpool.open(dir, { maxBytes: 1024 * 1024, segmentBytes: 64 * 1024 });
    for (let round = 0; round < 4; round += 1) {
      const results = await Promise.all(Array.from({ length: 100 }, (_, n) => spool.append([record(round * 100 + n)])));
      expect(results.every((r) => r.kept.length === 1)).toBe(true);
    }
    expect((await segments()).length).toBeGreaterThan(1);
    expect(spool.entries).toBe(400);
    const { inserted } = await replayAll(spool);
    expect(inserted.map((r) => r.entityId)).toEqual(Array.from({ length: 400 }, (_, n) => `nda-${n}`));
  });

  it('refuses what would pass maxBytes, saying why', async () => {
    const spool = await FileSpool.open(dir, { maxBytes: 2000, segmentBytes: 64 * 1024 });
    const result = await spool.append([record(1), record(2), record(3), record(4), record(5)]);
    expect(result.kept.length).toBeGreaterThan(0);
    expect(result.dropped.length).toBeGreaterThan(0);
    expect(result.kept.length + result.dropped.length).toBe(5);
    expect(result.error).toBe('spool_full');
    expect(spool.bytes).toBeLessThanOrEqual(2000);
    await spool.close();
  });

  it('reports a flipped byte and a torn last line, and replays the rest', async () => {
    const spool = await FileSpool.open(dir, limits);
    await spool.append([record(1), record(2), record(3)]);
    await spool.close();
    const [name] = await segments();
    const lines = (await readFile(join(dir, name), 'utf8')).split('\n');
    lines[1] = lines[1].replace('nda-2', 'nda-X');
    // A crash in the middle of a write leaves an unterminated line behind.
    await writeFile(join(dir, name), `${lines.join('\n')}{"sum":"0123","entry":{"id":"01`);
    const { inserted, rejected } = await replayAll(await FileSpool.open(dir, limits));
    expect(inserted.map((r) => r.entityId)).toEqual(['nda-1', 'nda-3']);
    expect(rejected.map((r) => [r.line, r.reason])).toEqual([
      [2, 'bad_checksum'],
      [4, 'torn_line'],
    ]);
  });

  it('keeps a segment whose records could not all be inserted', async () => {
    const spool = await FileSpool.open(dir, limits);
    await spool.append([record(1), record(2)]);
    await expect(
      spool.replay(
        () => Promise.reject(new Error('db down')),
        100,
        () => undefined,
      ),
    ).rejects.toThrow('db down');
    expect(spool.entries).toBe(2);
    const { inserted } = await replayAll(spool);
    expect(inserted).toHaveLength(2);
  });

  it('goes on appending to a new segment while an old one is replayed', async () => {
    const spool = await FileSpool.open(dir, limits);
    await spool.append([record(1)]);
    let release: (() => void) | undefined;
    const replay = spool.replay(
      () => new Promise<void>((resolve) => (release = resolve)),
      100,
      () => undefined,
    );
    // The replay holds its batch (it has read the old segment) before the append: waited for, not timed.
    for (let waited = 0; release === undefined; waited += 5) {
      if (waited > 10_000) throw new Error('the replay never reached its insert');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await spool.append([record(2)]);
    release();
    await replay;
    expect(spool.entries).toBe(1);
    const { inserted } = await replayAll(spool);
    expect(inserted.map((r) => r.entityId)).toEqual(['nda-2']);
  });

  it('takes stock of a large segment and replays it batch by batch, a piece at a time, never reading it whole', async () => {
    const big = { maxBytes: 64 * 1024 * 1024, segmentBytes: 64 * 1024 * 1024 };
    const spool = await FileSpool.open(dir, big);
    for (let n = 0; n < 10_000; n += 1000) await spool.append(Array.from({ length: 1000 }, (_, i) => record(n + i)));
    await spool.close();
    const [name] = await segments();
    const size = (await stat(join(dir, name))).size;
    expect(size).toBeGreaterThan(4 * 1024 * 1024);

    // Every byte of a segment the spool gets, through whichever call it uses.
    const reads: number[] = [];
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      readFile: async (path) => {
        const text = await nodeSpoolFiles.readFile(path);
        if (path.endsWith('.ndjson')) reads.push(Buffer.byteLength(text));
        return text;
      },
      open: async (path, flags, mode) => {
        const handle = await nodeSpoolFiles.open(path, flags, mode);
        const read: typeof handle.read = async (...args) => {
          const result = await handle.read(...args);
          if (path.endsWith('.ndjson')) reads.push(result.bytesRead);
          return result;
        };
        return Object.assign(Object.create(handle) as typeof handle, { read, close: () => handle.close() });
      },
    };
    const total = () => reads.reduce((sum, n) => sum + n, 0);
    const reopened = await FileSpool.open(dir, { ...big, files });
    expect([reopened.entries, total()]).toEqual([10_000, size]);
    expect(Math.max(...reads)).toBeLessThanOrEqual(1024 * 1024);

    reads.length = 0;
    const readAtInsert: number[] = [];
    let inserted = 0;
    await reopened.replay(
      async (records) => {
        readAtInsert.push(total());
        inserted += records.length;
      },
      500,
      () => undefined,
    );
    expect([inserted, total()]).toEqual([10_000, size]);
    expect(Math.max(...reads)).toBeLessThanOrEqual(1024 * 1024);
    expect(readAtInsert[0]).toBeLessThan(size / 4);
    await reopened.close();
  });
});
