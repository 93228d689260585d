import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { type SpoolRejection } from './audit-spool';
import { FileSpool } from './file-spool';
import { nodeSpoolFiles, type SpoolFileHandle, type SpoolFiles } from './spool-files';

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
});
