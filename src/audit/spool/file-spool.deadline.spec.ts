import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { type SpoolRejection } from './audit-spool';
import { boundedFiles } from './bounded-files';
import { FileSpool } from './file-spool';
import { SpoolReadError } from './spool-errors';
import { nodeSpoolFiles, type SpoolFileHandle, type SpoolFiles } from './spool-files';

// Promise 11 for the spool itself: with `timeoutMs`, no file operation holds an append, a replay
// or close() beyond its deadline, and what a hung call does once it returns corrupts nothing.

// Long enough for a healthy call on a busy host, short enough to keep the tests quick.
const TIMEOUT_MS = 1000;
const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord => normalizer.normalize({ action: 'nda_created', entityId: `nda-${n}`, changes: { n } }).record;
const limits = { maxBytes: 1024 * 1024, segmentBytes: 64 * 1024 };

/** The real file system, except that `operation` of the handles of files matching `match` waits while `holding`. */
function heldFiles(operation: 'sync' | 'read', match: (path: string, flags: string) => boolean) {
  const state = { holding: false, held: [] as (() => void)[] };
  const files: SpoolFiles = {
    ...nodeSpoolFiles,
    open: async (path, flags, mode) => {
      const handle = await nodeSpoolFiles.open(path, flags, mode);
      if (!match(path, flags)) return handle;
      const hold = async () => {
        if (state.holding) await new Promise<void>((resolve) => state.held.push(resolve));
      };
      const wrapped: SpoolFileHandle = {
        write: (...args) => handle.write(...args),
        read: async (...args) => {
          if (operation === 'read') await hold();
          return handle.read(...args);
        },
        truncate: (length) => handle.truncate(length),
        sync: async () => {
          if (operation === 'sync') await hold();
          return handle.sync();
        },
        stat: () => handle.stat(),
        close: () => handle.close(),
      };
      return wrapped;
    },
  };
  const release = () => {
    state.holding = false;
    state.held.splice(0).forEach((resolve) => resolve());
  };
  return { files, state, release };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Resolves true when `promise` settles within `ms` (a bound with room for a busy host), else false. */
async function settlesWithin(promise: Promise<unknown>, ms = 5000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    promise.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(resolve, ms, false))),
  ]);
  clearTimeout(timer);
  return settled;
}

describe('FileSpool with a deadline on each file operation', () => {
  let dir: string;
  let release: () => void = () => undefined;
  beforeEach(async () => (dir = join(await mkdtemp(join(tmpdir(), 'spool-deadline-')), 'audit')));
  afterEach(async () => {
    release();
    await sleep(20);
    await rm(join(dir, '..'), { recursive: true, force: true });
  });

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

  it('refuses an append whose fsync hangs, refuses the next at once while it hangs, and goes on whole once it returns', async () => {
    const held = heldFiles('sync', (path) => path.endsWith('.ndjson'));
    release = held.release;
    const spool = await FileSpool.open(dir, { ...limits, files: held.files, timeoutMs: TIMEOUT_MS });
    held.state.holding = true;
    const hung = spool.append([record(1)]);
    expect(await settlesWithin(hung)).toBe(true);
    expect(await hung).toMatchObject({
      kept: [],
      dropped: [{ entityId: 'nda-1' }],
      error: expect.stringMatching(/AUDIT_DISK_TIMEOUT: fsync/),
    });

    // The disk still has a call that has not returned: the next append is not handed to it.
    const stalled = await spool.append([record(2)]);
    expect(stalled).toMatchObject({ kept: [], dropped: [{ entityId: 'nda-2' }], error: expect.stringMatching(/not begun/) });
    expect(held.state.held).toHaveLength(1);

    // Once the hung call has returned, appends are handed to the disk again.
    held.release();
    let third = await spool.append([record(3)]);
    for (let tries = 0; third.kept.length === 0 && tries < 200; tries += 1) {
      await sleep(20);
      third = await spool.append([record(3)]);
    }
    expect(third.kept).toHaveLength(1);
    expect(await settlesWithin(spool.close())).toBe(true);

    // What the hung append wrote landed whole, in a segment of its own: nothing torn, nothing interleaved.
    const reopened = await FileSpool.open(dir, limits);
    expect(await replayAll(reopened)).toEqual({ inserted: ['nda-1', 'nda-3'], rejected: [] });
    await reopened.close();
  });

  it('rejects a replay whose read hangs with AUDIT_SPOOL_READ (cause AUDIT_DISK_TIMEOUT), keeps the segment, and replays it later', async () => {
    const held = heldFiles('read', (path, flags) => path.endsWith('.ndjson') && flags === 'r');
    release = held.release;
    const first = await FileSpool.open(dir, limits);
    await first.append([record(1), record(2)]);
    await first.close();
    const spool = await FileSpool.open(dir, { ...limits, files: held.files, timeoutMs: TIMEOUT_MS });
    held.state.holding = true;

    const replay = replayAll(spool).catch((error: unknown) => error);
    expect(await settlesWithin(replay)).toBe(true);
    const error = (await replay) as SpoolReadError;
    expect(error).toBeInstanceOf(SpoolReadError);
    expect(error.cause).toMatchObject({ code: 'AUDIT_DISK_TIMEOUT', operation: 'read' });
    expect(spool.entries).toBe(2);
    expect(await settlesWithin(spool.close())).toBe(true);

    held.release();
    const reopened = await FileSpool.open(dir, limits);
    expect(await replayAll(reopened)).toEqual({ inserted: ['nda-1', 'nda-2'], rejected: [] });
    await reopened.close();
  });
});

describe('FileSpool.open with a deadline', () => {
  it('rejects with AUDIT_DISK_TIMEOUT when the disk does not answer, instead of holding start-up', async () => {
    let finish!: () => void;
    const files: SpoolFiles = { ...nodeSpoolFiles, mkdir: () => new Promise<void>((resolve) => (finish = resolve)) };
    const opening = FileSpool.open(join(tmpdir(), 'spool-never-made'), { ...limits, files, timeoutMs: TIMEOUT_MS });
    await expect(opening).rejects.toMatchObject({ code: 'AUDIT_DISK_TIMEOUT', operation: 'mkdir' });
    finish();
  });
});

describe('boundedFiles', () => {
  it('closes a file whose open returned after its deadline, and puts off a close asked for while stalled', async () => {
    const closed: string[] = [];
    let finishOpen!: () => void;
    const handle = (name: string): SpoolFileHandle => ({
      write: () => Promise.resolve({ bytesWritten: 0 }),
      read: () => Promise.resolve({ bytesRead: 0 }),
      truncate: () => Promise.resolve(),
      sync: () => Promise.resolve(),
      stat: () => Promise.resolve({ size: 0 }),
      close: async () => void closed.push(name),
    });
    const slow: SpoolFiles = {
      ...nodeSpoolFiles,
      open: async (path) => {
        if (path === 'late') await new Promise<void>((resolve) => (finishOpen = resolve));
        return handle(path);
      },
    };
    const files = boundedFiles(slow, TIMEOUT_MS);
    const early = await files.open('early', 'r');
    await expect(files.open('late', 'r')).rejects.toMatchObject({ code: 'AUDIT_DISK_TIMEOUT', operation: 'open' });
    expect([files.timeouts, files.stalled]).toEqual([1, true]);
    await expect(files.readdir('.')).rejects.toMatchObject({ code: 'AUDIT_DISK_TIMEOUT', stalled: true });
    await early.close();
    expect(closed).toEqual([]);

    finishOpen();
    await sleep(10);
    expect(closed.sort()).toEqual(['early', 'late']);
    expect([files.timeouts, files.stalled]).toEqual([1, false]);
  });
});
