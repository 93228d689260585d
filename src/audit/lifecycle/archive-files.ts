import { type FileHandle, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { diskGate } from '../spool/disk-gate';

// An archive holds what the trail holds, personal values and their salts included: readable by its
// owner only, as the spool's files are (the modes apply to what the archive creates: a file is
// always created anew, never reopened, since an existing file keeps its mode).
const OWNER_ONLY_FILE = 0o600;
const OWNER_ONLY_DIRECTORY = 0o700;

/**
 * A file being written: its bytes appended in order, flushed to the disk (`sync`, before it is
 * renamed into place), then closed.
 *
 * @example
 * const file: ArchiveFile = await boundedArchiveFiles('/archive', 30_000).create('/archive/a.partial');
 * await file.write(Buffer.from('{}\n'));
 * await file.sync();
 * await file.close();
 */
export interface ArchiveFile {
  write(chunk: Uint8Array): Promise<void>;
  /** fsync: the bytes written are on the disk when it resolves. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The file calls of an archive, each bounded (see {@link boundedArchiveFiles}).
 *
 * @example
 * const files: ArchiveFiles = boundedArchiveFiles('/archive', 30_000);
 * await files.mkdir('/archive');
 */
export interface ArchiveFiles {
  /** Made with its missing parents; resolves to the first directory it made (undefined: none). */
  mkdir(path: string): Promise<string | undefined>;
  /** Created anew, owner-only: a file already at `path` (a killed run's) is removed first. */
  create(path: string): Promise<ArchiveFile>;
  /** {@link create}, `text` written, fsynced and closed. */
  writeFile(path: string, text: string): Promise<void>;
  /**
   * Created owner-only with `text`, fsynced and closed; rejects (`EEXIST`) when a file is at `path`, never replacing it: a lock.
   * When the file is created but its content cannot be written or fsynced, it is removed and the error thrown.
   */
  createNew(path: string, text: string): Promise<void>;
  /** The text of the file at `path`, or null when no file is there. */
  readText(path: string): Promise<string | null>;
  rename(from: string, to: string): Promise<void>;
  /** fsyncs a directory: the renames and creations in it are on the disk when it resolves. */
  syncDirectory(path: string): Promise<void>;
  /** Removes `path` if it is there; never rejects (a temporary file left behind is not an archive). */
  discard(path: string): Promise<void>;
}

/**
 * The archive's file calls on the disk under `dir`, each through that disk's gate (the spool's,
 * `DiskGate`) with the deadline `timeoutMs` (`--timeout-ms`): a disk that never answers (a hard
 * NFS mount) fails the call with `AUDIT_DISK_TIMEOUT` (a `DiskTimeoutError`) instead of holding
 * the command, and its transaction, for ever; once one call has hung, the next ones reject at once
 * until it returns. A file whose open returns after its deadline is closed then.
 *
 * @example
 * const files = boundedArchiveFiles('/var/archive/audit', 30_000);
 * const file = await files.create('/var/archive/audit/audit-2026-01.ndjson.gz.partial');
 * await file.write(Buffer.from('…'));
 * await file.close();
 */
export function boundedArchiveFiles(dir: string, timeoutMs: number): ArchiveFiles {
  const run = <T>(operation: string, call: () => Promise<T>, onLate?: (value: T) => void): Promise<T> =>
    diskGate(dir).run(operation, timeoutMs, call, { onLate });
  const opened = (handle: FileHandle): ArchiveFile => ({
    write: async (chunk) => {
      for (let offset = 0; offset < chunk.length;) {
        const { bytesWritten } = await run('write', () => handle.write(chunk, offset, chunk.length - offset));
        offset += bytesWritten;
      }
    },
    sync: () => run('fsync', () => handle.sync()),
    close: () => diskGate(dir).close(timeoutMs, () => handle.close()),
  });
  const closeLate = (late: FileHandle) =>
    void diskGate(dir)
      .close(timeoutMs, () => late.close())
      .catch(() => undefined);
  const files: ArchiveFiles = {
    mkdir: (path) => run('mkdir', () => mkdir(path, { recursive: true, mode: OWNER_ONLY_DIRECTORY })),
    create: async (path) => {
      await run('unlink', () => rm(path, { force: true }));
      // 'wx': a file that appeared since (another run's) fails the open rather than keeping its mode.
      return opened(await run('open', () => open(path, 'wx', OWNER_ONLY_FILE), closeLate));
    },
    writeFile: async (path, text) => {
      const file = await files.create(path);
      try {
        await file.write(Buffer.from(text));
        await file.sync();
      } finally {
        await file.close();
      }
    },
    createNew: async (path, text) => {
      const file = opened(await run('open', () => open(path, 'wx', OWNER_ONLY_FILE), closeLate));
      try {
        await file.write(Buffer.from(text));
        await file.sync();
        await file.close();
      } catch (error) {
        // The file is this call's (created by its open): one whose content could not be written (a full disk) is not left behind.
        await file.close().catch(() => undefined);
        await files.discard(path);
        throw error;
      }
    },
    readText: (path) =>
      run('read', () =>
        readFile(path, 'utf8').catch((error: unknown) => {
          if ((error as { code?: string }).code === 'ENOENT') return null;
          throw error;
        }),
      ),
    rename: (from, to) => run('rename', () => rename(from, to)),
    syncDirectory: async (path) => {
      const handle = await run('open', () => open(path, 'r'), closeLate);
      try {
        await run('fsync', () => handle.sync());
      } finally {
        await diskGate(dir).close(timeoutMs, () => handle.close());
      }
    },
    discard: (path) => run('unlink', () => rm(path, { force: true })).catch(() => undefined),
  };
  return files;
}
