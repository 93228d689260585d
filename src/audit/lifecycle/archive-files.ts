import { type FileHandle, mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { diskGate } from '../spool/disk-gate';

// An archive holds what the trail holds, personal values and their salts included: readable by its
// owner only, as the spool's files are (the modes apply to what the archive creates).
const OWNER_ONLY_FILE = 0o600;
const OWNER_ONLY_DIRECTORY = 0o700;

/**
 * A file being written: its bytes appended in order, then closed.
 *
 * @example
 * const file: ArchiveFile = await boundedArchiveFiles('/archive', 30_000).create('/archive/a.partial');
 * await file.write(Buffer.from('{}\n'));
 * await file.close();
 */
export interface ArchiveFile {
  write(chunk: Uint8Array): Promise<void>;
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
  mkdir(path: string): Promise<void>;
  /** Created, or emptied when it exists. */
  create(path: string): Promise<ArchiveFile>;
  writeFile(path: string, text: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
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
    close: () => diskGate(dir).close(timeoutMs, () => handle.close()),
  });
  return {
    mkdir: async (path) => void (await run('mkdir', () => mkdir(path, { recursive: true, mode: OWNER_ONLY_DIRECTORY }))),
    create: async (path) =>
      opened(
        await run(
          'open',
          () => open(path, 'w', OWNER_ONLY_FILE),
          (late) =>
            void diskGate(dir)
              .close(timeoutMs, () => late.close())
              .catch(() => undefined),
        ),
      ),
    writeFile: (path, text) => run('writeFile', () => writeFile(path, text, { mode: OWNER_ONLY_FILE })),
    rename: (from, to) => run('rename', () => rename(from, to)),
    discard: (path) => run('unlink', () => rm(path, { force: true })).catch(() => undefined),
  };
}
