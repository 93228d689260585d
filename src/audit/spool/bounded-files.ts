import { stallTolerantDeadline } from '../stall-tolerant-deadline';
import { DiskTimeoutError } from './spool-errors';
import { type SpoolFileHandle, type SpoolFiles } from './spool-files';

/** {@link SpoolFiles} whose every operation has a deadline, and what those deadlines caught. */
export interface BoundedFiles extends SpoolFiles {
  /** File operations that did not return within the deadline, since start. */
  readonly timeouts: number;
  /** True while one of them still has not returned. */
  readonly stalled: boolean;
}

/**
 * Wraps `files` so that no operation (of the seam, or of a handle it opened) is waited for longer
 * than `timeoutMs` (an answer that came while the event loop was stalled is taken, see
 * {@link stallTolerantDeadline}): past it, the operation rejects with a {@link DiskTimeoutError} and is counted.
 * A disk that hung one call is not handed another: until that call returns, every new operation
 * rejects at once (`stalled`), so hung calls never pile up in Node's thread pool, and a `close`
 * is put off until then (it resolves at once). What a late call does is the caller's to allow
 * for; the spool retires a segment whose append failed, the quarantine starts a new file.
 *
 * @example
 * const files = boundedFiles(nodeSpoolFiles, 2000);
 * await files.mkdir(dir, 0o700); // rejects with AUDIT_DISK_TIMEOUT after 2 s of a hung disk
 */
export function boundedFiles(files: SpoolFiles, timeoutMs: number): BoundedFiles {
  const gate = new DiskGate(timeoutMs);
  const handle = (inner: SpoolFileHandle): SpoolFileHandle => ({
    write: (buffer, offset, length) => gate.run('write', () => inner.write(buffer, offset, length)),
    read: (buffer, offset, length, position) => gate.run('read', () => inner.read(buffer, offset, length, position)),
    truncate: (length) => gate.run('truncate', () => inner.truncate(length)),
    sync: () => gate.run('fsync', () => inner.sync()),
    stat: () => gate.run('stat', () => inner.stat()),
    close: () => gate.close(() => inner.close()),
  });
  return {
    get timeouts() {
      return gate.timeouts;
    },
    get stalled() {
      return gate.stalled;
    },
    // A file opened after its deadline has no one to close it but this.
    open: async (path, flags, mode) =>
      handle(
        await gate.run(
          'open',
          () => files.open(path, flags, mode),
          (late) => void late.close().catch(() => undefined),
        ),
      ),
    mkdir: (path, mode) => gate.run('mkdir', () => files.mkdir(path, mode)),
    readdir: (path) => gate.run('readdir', () => files.readdir(path)),
    rename: (from, to) => gate.run('rename', () => files.rename(from, to)),
    unlink: (path) => gate.run('unlink', () => files.unlink(path)),
    readFile: (path) => gate.run('readFile', () => files.readFile(path)),
    writeFile: (path, text, mode) => gate.run('writeFile', () => files.writeFile(path, text, mode)),
  };
}

/** Deadlines, and the calls that outlived theirs. */
class DiskGate {
  timeouts = 0;
  private readonly hung = new Set<Promise<unknown>>();
  private deferred: (() => Promise<void>)[] = [];

  constructor(private readonly timeoutMs: number) {}

  get stalled(): boolean {
    return this.hung.size > 0;
  }

  /** `onLate`: what to do with the value of a call that returned after its deadline. */
  run<T>(operation: string, call: () => Promise<T>, onLate?: (value: T) => void): Promise<T> {
    if (this.stalled) return Promise.reject(new DiskTimeoutError(operation, this.timeoutMs, true));
    const pending = (async () => call())();
    return new Promise<T>((resolve, reject) => {
      const cancel = stallTolerantDeadline(this.timeoutMs, () => {
        this.timeouts += 1;
        const late: Promise<unknown> = pending.then(
          (value) => {
            this.returned(late);
            onLate?.(value);
          },
          () => this.returned(late),
        );
        this.hung.add(late);
        reject(new DiskTimeoutError(operation, this.timeoutMs));
      });
      pending.then(
        (value) => {
          cancel();
          resolve(value);
        },
        (error: unknown) => {
          cancel();
          reject(error);
        },
      );
    });
  }

  /** A close while stalled waits (unawaited) for the stall to end: it must not join the hung calls. */
  close(call: () => Promise<void>): Promise<void> {
    if (!this.stalled) return this.run('close', call);
    this.deferred.push(call);
    return Promise.resolve();
  }

  private returned(late: Promise<unknown>): void {
    this.hung.delete(late);
    if (this.stalled) return;
    for (const close of this.deferred.splice(0)) void close().catch(() => undefined);
  }
}
