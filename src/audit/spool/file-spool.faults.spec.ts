import { mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { type SpoolRejection } from './audit-spool';
import { FileSpool } from './file-spool';
import { SpoolReadError } from './spool-errors';
import { nodeSpoolFiles, type SpoolFileHandle, type SpoolFiles } from './spool-files';
import { encodeSpoolLine } from './spool-line';

const normalizer = new AuditEntryNormalizer(['password'], 64 * 1024);
const record = (n: number): AuditRecord =>
  normalizer.normalize({ action: 'nda_created', entityId: `nda-${n}`, changes: { n, pad: 'x'.repeat(200) } }).record;
const limits = { maxBytes: 1024 * 1024, segmentBytes: 64 * 1024 };
const fsError = (code: string) => Object.assign(new Error(`${code}: injected`), { code });

type Write = SpoolFileHandle['write'];
/** A step of a scripted segment write: pass it through, write only `n` bytes of it, or fail. */
type WriteStep = 'real' | { short: number } | { fail: string };

/** The real file system, except that segment writes follow `script` while it lasts. */
function scriptedWrites(script: WriteStep[], options: { truncate?: 'fails' } = {}): SpoolFiles {
  return {
    ...nodeSpoolFiles,
    open: async (path, flags, mode) => {
      const handle = await nodeSpoolFiles.open(path, flags, mode);
      if (flags !== 'a') return handle;
      const write: Write = (buffer, offset, length) => {
        const step = script.shift() ?? 'real';
        if (step === 'real') return handle.write(buffer, offset, length);
        if ('short' in step) return handle.write(buffer, offset, Math.min(step.short, length));
        return Promise.reject(fsError(step.fail));
      };
      const truncate = options.truncate ? () => Promise.reject(fsError('EIO')) : handle.truncate.bind(handle);
      return { ...bindAll(handle), write, truncate };
    },
  };
}

function bindAll(handle: SpoolFileHandle): SpoolFileHandle {
  return {
    write: (...args) => handle.write(...args),
    read: (...args) => handle.read(...args),
    truncate: (length) => handle.truncate(length),
    sync: () => handle.sync(),
    stat: () => handle.stat(),
    close: () => handle.close(),
  };
}

/** The real file system, except that every fsync waits until the test releases it. */
function heldSyncs(options: { hold: (path: string) => boolean }) {
  const held: { path: string; release: (error?: Error) => void }[] = [];
  const files: SpoolFiles = {
    ...nodeSpoolFiles,
    open: async (path, flags, mode) => {
      const handle = await nodeSpoolFiles.open(path, flags, mode);
      const sync = async () => {
        if (options.hold(path))
          await new Promise<void>((resolve, reject) => held.push({ path, release: (e) => (e ? reject(e) : resolve()) }));
        await handle.sync();
      };
      return { ...bindAll(handle), sync };
    },
  };
  const waitFor = async (what: (path: string) => boolean) => {
    for (let waited = 0; waited < 5000; waited += 5) {
      const index = held.findIndex((h) => what(h.path));
      if (index >= 0) return held.splice(index, 1)[0];
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error('no fsync of that file was asked for');
  };
  return { files, waitFor };
}

/** Lets every promise that can settle now settle. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('FileSpool under disk faults', () => {
  let dir: string;
  beforeEach(async () => (dir = join(await mkdtemp(join(tmpdir(), 'spool-faults-')), 'audit')));
  afterEach(() => rm(join(dir, '..'), { recursive: true, force: true }));

  const replayAll = async (spool: FileSpool) => {
    const inserted: string[] = [];
    const rejected: SpoolRejection[] = [];
    await spool.replay(
      async (records) => void inserted.push(...records.map((r) => r.entityId!)),
      100,
      (r) => rejected.push(r),
    );
    return { inserted, rejected };
  };

  it('finishes a short write, and keeps every line whole', async () => {
    const spool = await FileSpool.open(dir, { ...limits, files: scriptedWrites(['real', { short: 10 }, { short: 300 }]) });
    expect((await spool.append([record(1)])).kept).toHaveLength(1);
    const result = await spool.append([record(2), record(3)]);
    expect([result.kept.map((r) => r.entityId), result.dropped]).toEqual([['nda-2', 'nda-3'], []]);
    await spool.close();
    const reopened = await FileSpool.open(dir, limits);
    expect(reopened.entries).toBe(3);
    expect(await replayAll(reopened)).toEqual({ inserted: ['nda-1', 'nda-2', 'nda-3'], rejected: [] });
    await reopened.close();
  });

  it.each(['ENOSPC', 'EFBIG'])(
    'drops the whole append that failed with %s after a short write, and the next append is whole',
    async (code) => {
      const spool = await FileSpool.open(dir, { ...limits, files: scriptedWrites(['real', { short: 100 }, { fail: code }]) });
      await spool.append([record(1)]);
      const { bytes } = spool;
      const failed = await spool.append([record(2), record(3)]);
      expect(failed.kept).toEqual([]);
      expect(failed.dropped.map((r) => r.entityId)).toEqual(['nda-2', 'nda-3']);
      expect(failed.error).toMatch(new RegExp(`^spool_error: .*${code}`));
      expect([spool.entries, spool.bytes]).toEqual([1, bytes]);
      expect((await spool.append([record(4)])).kept).toHaveLength(1);
      await spool.close();

      const reopened = await FileSpool.open(dir, limits);
      expect(reopened.entries).toBe(2);
      expect(await replayAll(reopened)).toEqual({ inserted: ['nda-1', 'nda-4'], rejected: [] });
      await reopened.close();
    },
  );

  it('when the failed append cannot be cut off, goes on in a new segment and replay reports the torn line', async () => {
    const files = scriptedWrites(['real', { short: 100 }, { fail: 'ENOSPC' }], { truncate: 'fails' });
    const spool = await FileSpool.open(dir, { ...limits, files });
    await spool.append([record(1)]);
    expect((await spool.append([record(2), record(3)])).dropped).toHaveLength(2);
    expect((await spool.append([record(4)])).kept).toHaveLength(1);
    await spool.close();

    const { inserted, rejected } = await replayAll(await FileSpool.open(dir, limits));
    expect(inserted).toEqual(['nda-1', 'nda-4']);
    expect(rejected.map((r) => [r.line, r.reason])).toEqual([[2, 'torn_line']]);
  });

  describe('fsync', () => {
    const isSegment = (path: string) => path.endsWith('.ndjson');
    const tracked = <T>(promise: Promise<T>) => {
      const state = { settled: false, promise: promise.finally(() => (state.settled = true)) };
      return state;
    };

    it("resolves an append only once the segment's fsync has resolved", async () => {
      const { files, waitFor } = heldSyncs({ hold: isSegment });
      const spool = await FileSpool.open(dir, { ...limits, files });
      for (const n of [1, 2]) {
        const append = tracked(spool.append([record(n)]));
        const sync = await waitFor(isSegment);
        await settle();
        expect(append.settled).toBe(false);
        sync.release();
        expect((await append.promise).kept).toHaveLength(1);
      }
      await spool.close();
    });

    it("counts the first append to a new segment only once the directory's fsync has resolved", async () => {
      const { files, waitFor } = heldSyncs({ hold: (path) => path === dir });
      const spool = await FileSpool.open(dir, { ...limits, files });
      const append = tracked(spool.append([record(1)]));
      const sync = await waitFor((path) => path === dir);
      await settle();
      expect([append.settled, spool.entries]).toEqual([false, 0]);
      sync.release();
      expect((await append.promise).kept).toHaveLength(1);
      expect(spool.entries).toBe(1);
      await spool.close();
    });

    it('drops an append whose fsync failed, and leaves no trace of it on disk', async () => {
      const { files, waitFor } = heldSyncs({ hold: isSegment });
      const spool = await FileSpool.open(dir, { ...limits, files });
      const first = spool.append([record(1)]);
      (await waitFor(isSegment)).release();
      await first;
      const failed = spool.append([record(2)]);
      (await waitFor(isSegment)).release(fsError('EIO'));
      expect(await failed).toMatchObject({ kept: [], dropped: [{ entityId: 'nda-2' }], error: expect.stringMatching(/EIO/) });
      expect(spool.entries).toBe(1);
      await spool.close();
      expect((await replayAll(await FileSpool.open(dir, limits))).inserted).toEqual(['nda-1']);
    });
  });

  describe('replay', () => {
    const segments = async () => (await readdir(dir)).filter((n) => n.endsWith('.ndjson')).sort();
    /** Two segments: nda-1 and nda-2 in the first, nda-3 in the second. */
    const twoSegments = async (files?: SpoolFiles) => {
      // A segment holds two lines: a batch is not written past a segment's size.
      const segmentBytes = Buffer.byteLength(encodeSpoolLine(record(1)) + encodeSpoolLine(record(2)));
      const spool = await FileSpool.open(dir, { maxBytes: 1024 * 1024, segmentBytes, files });
      await spool.append([record(1), record(2)]);
      await spool.append([record(3)]);
      expect(await segments()).toHaveLength(2);
      return spool;
    };
    const replayInto = (spool: FileSpool, inserted: string[], rejected: SpoolRejection[], insert?: () => Promise<void>) =>
      spool.replay(
        async (records) => {
          await insert?.();
          inserted.push(...records.map((r) => r.entityId!));
        },
        100,
        (r) => rejected.push(r),
      );

    it('drops a segment deleted underneath, reporting each of its entries lost, and replays the others', async () => {
      const spool = await twoSegments();
      const [first] = await segments();
      await unlink(join(dir, first));
      const inserted: string[] = [];
      const rejected: SpoolRejection[] = [];
      expect(await replayInto(spool, inserted, rejected)).toBe(1);
      expect(inserted).toEqual(['nda-3']);
      expect(rejected.map((r) => [r.file, r.line, r.reason])).toEqual([
        [join(dir, first), 1, 'segment_missing'],
        [join(dir, first), 2, 'segment_missing'],
      ]);
      expect([spool.entries, spool.bytes]).toEqual([0, 0]);
      expect(await replayInto(spool, inserted, rejected)).toBe(0);
      await spool.close();
    });

    it.each(['EACCES', 'EMFILE'])(
      'rejects with AUDIT_SPOOL_READ when a segment cannot be read (%s), keeps it, replays the others, and replays it once it can',
      async (code) => {
        let denied: string | undefined;
        const files: SpoolFiles = {
          ...nodeSpoolFiles,
          open: (path, flags, mode) => (path === denied ? Promise.reject(fsError(code)) : nodeSpoolFiles.open(path, flags, mode)),
        };
        const spool = await twoSegments(files);
        denied = join(dir, (await segments())[0]);
        const inserted: string[] = [];
        const rejected: SpoolRejection[] = [];
        const error = (await replayInto(spool, inserted, rejected).catch((e: unknown) => e)) as SpoolReadError;
        expect(error).toBeInstanceOf(SpoolReadError);
        expect(error).toMatchObject({ code: 'AUDIT_SPOOL_READ', file: denied, cause: { code } });
        expect([inserted, rejected, spool.entries]).toEqual([['nda-3'], [], 2]);

        denied = undefined;
        expect(await replayInto(spool, inserted, rejected)).toBe(2);
        expect([inserted, spool.entries, await segments()]).toEqual([['nda-3', 'nda-1', 'nda-2'], 0, []]);
        await spool.close();
      },
    );

    it('tells an insert failure apart from a read failure', async () => {
      const spool = await twoSegments();
      const error = await replayInto(spool, [], [], () => Promise.reject(new Error('db down'))).catch((e: unknown) => e);
      expect(error).toEqual(new Error('db down'));
      expect(error).not.toBeInstanceOf(SpoolReadError);
      expect(spool.entries).toBe(3);
      await spool.close();
    });

    it('reports a bad line once, however often the replay of its segment is retried', async () => {
      const spool = await FileSpool.open(dir, limits);
      await spool.append([record(1), record(2), record(3)]);
      await spool.close();
      const [name] = await segments();
      const lines = (await readFile(join(dir, name), 'utf8')).split('\n');
      lines[1] = lines[1].replace('nda-2', 'nda-X');
      await writeFile(join(dir, name), lines.join('\n'));

      const reopened = await FileSpool.open(dir, limits);
      const inserted: string[] = [];
      const rejected: SpoolRejection[] = [];
      for (let attempt = 0; attempt < 3; attempt += 1) {
        await expect(replayInto(reopened, inserted, rejected, () => Promise.reject(new Error('db down')))).rejects.toThrow('db down');
      }
      await replayInto(reopened, inserted, rejected);
      expect(inserted).toEqual(['nda-1', 'nda-3']);
      expect(rejected.map((r) => [r.line, r.reason])).toEqual([[2, 'bad_checksum']]);
      await reopened.close();
    });

    it('goes on from the last committed batch when a replay is retried', async () => {
      const spool = await FileSpool.open(dir, limits);
      await spool.append([1, 2, 3, 4, 5].map(record));
      const inserted: string[] = [];
      let calls = 0;
      const failThird = async (records: AuditRecord[]) => {
        if ((calls += 1) === 3) throw new Error('db down');
        inserted.push(...records.map((r) => r.entityId!));
      };
      await expect(spool.replay(failThird, 2, () => undefined)).rejects.toThrow('db down');
      expect(spool.entries).toBe(5);
      expect(await spool.replay(failThird, 2, () => undefined)).toBe(1);
      expect(inserted).toEqual(['nda-1', 'nda-2', 'nda-3', 'nda-4', 'nda-5']);
      expect(spool.entries).toBe(0);
      await spool.close();
    });
  });
});
