import { DiskGate, diskGate } from './disk-gate';
import { type SpoolFileHandle, type SpoolFiles } from './spool-files';

/** {@link SpoolFiles} whose every operation has a deadline, and what those deadlines caught. */
export interface BoundedFiles extends SpoolFiles {
  /** This user's file operations that did not return within the deadline, since start. */
  readonly timeouts: number;
  /** True while a call on the disk (this user's or another's) still has not returned. */
  readonly stalled: boolean;
}

/**
 * Wraps `files` so that every operation (of the seam, or of a handle it opened) goes through the
 * {@link DiskGate} of the disk under `dir` (a gate of its own without one), shared with every other
 * user of that directory: at most `DISK_CALLS_IN_FLIGHT` calls on the disk at once, none waited for
 * longer than `timeoutMs`: past it, the operation rejects with a `DiskTimeoutError` and is counted
 * here. A disk that hung one call is not handed another, by this user or any other: until that call
 * returns, every new operation rejects at once (`stalled`), so hung calls never pile up in Node's
 * thread pool, and a `close` is put off until then (it resolves at once). What a late call does is
 * the caller's to allow for; the spool retires a segment whose append failed, the quarantine starts
 * a new file.
 *
 * @example
 * const files = boundedFiles(nodeSpoolFiles, 2000, '/var/spool/audit');
 * await files.mkdir('/var/spool/audit', 0o700); // rejects with AUDIT_DISK_TIMEOUT after 2 s of a hung disk
 */
export function boundedFiles(files: SpoolFiles, timeoutMs: number, dir?: string): BoundedFiles {
  const own = dir === undefined ? new DiskGate() : undefined;
  const gate = (): DiskGate => own ?? diskGate(dir as string);
  let timeouts = 0;
  const onTimeout = () => void (timeouts += 1);
  const run = <T>(operation: string, call: () => Promise<T>, onLate?: (value: T) => void): Promise<T> =>
    gate().run(operation, timeoutMs, call, { onTimeout, onLate });
  const close = (call: () => Promise<void>) => gate().close(timeoutMs, call, { onTimeout });
  const handle = (inner: SpoolFileHandle): SpoolFileHandle => ({
    write: (buffer, offset, length) => run('write', () => inner.write(buffer, offset, length)),
    read: (buffer, offset, length, position) => run('read', () => inner.read(buffer, offset, length, position)),
    truncate: (length) => run('truncate', () => inner.truncate(length)),
    sync: () => run('fsync', () => inner.sync()),
    stat: () => run('stat', () => inner.stat()),
    close: () => close(() => inner.close()),
  });
  return {
    get timeouts() {
      return timeouts;
    },
    get stalled() {
      return gate().stalled;
    },
    // A file opened after its deadline has no one to close it but this.
    open: async (path, flags, mode) =>
      handle(
        await run(
          'open',
          () => files.open(path, flags, mode),
          (late) => void close(() => late.close()).catch(() => undefined),
        ),
      ),
    mkdir: (path, mode) => run('mkdir', () => files.mkdir(path, mode)),
    readdir: (path) => run('readdir', () => files.readdir(path)),
    stat: (path) => run('stat', () => files.stat(path)),
    rename: (from, to) => run('rename', () => files.rename(from, to)),
    unlink: (path) => run('unlink', () => files.unlink(path)),
    readFile: (path) => run('readFile', () => files.readFile(path)),
    writeFile: (path, text, mode) => run('writeFile', () => files.writeFile(path, text, mode)),
  };
}
