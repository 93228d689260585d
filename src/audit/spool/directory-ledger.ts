import { realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';

/**
 * This process's one account of a spool directory that its writers share (the spool, the
 * quarantine, a second spool on the same path): what they added to it, and their turns. A writer
 * decides whether its bytes fit `spoolMaxBytes` and writes them within one {@link turn}, so no
 * other writer of the process decides in between on a count that misses them; and it reports
 * them with {@link wrote}, so that a writer that counted the directory earlier (the spool, whose
 * open segment's room was counted before its first line) adds what the others wrote since.
 *
 * @example
 * const ledger = await directoryLedger('/var/spool/audit');
 * await ledger.turn(async () => {
 *   if ((await used()) + buffer.length > maxBytes) throw new Error('spool_full');
 *   await write(buffer);
 *   ledger.wrote(buffer.length);
 * });
 */
export class DirectoryLedger {
  private added = 0;

  /** The directory's real path, as the kernel reads the path it was asked by (see {@link directoryLedger}). */
  constructor(readonly dir: string) {}
  private turns: Promise<unknown> = Promise.resolve();

  /** Bytes this process's writers added to the directory since start, its files deleted since or not. */
  get written(): number {
    return this.added;
  }

  /** Reports bytes a writer added (or may have added: a write that failed midway counts whole). */
  wrote(bytes: number): void {
    this.added += bytes;
  }

  /** Runs `step` once no other writer's step is running; steps run one at a time, in order. */
  turn<T>(step: () => Promise<T>): Promise<T> {
    const result = this.turns.then(step);
    this.turns = result.catch(() => undefined);
    return result;
  }
}

const ledgers = new Map<string, DirectoryLedger>();

/**
 * The ledger of the spool directory `dir`, one per directory in the process whatever the path it
 * is reached by (a symbolic link, `..`, a trailing slash), kept for the life of the process (its
 * writers hold marks against {@link DirectoryLedger.written}). The directory is known by its real
 * path ({@link DirectoryLedger.dir}), read as the kernel reads `dir`: a `..` after a symbolic link
 * is the parent of the link's target, not of the link; one not made yet by the real path of its
 * nearest existing parent and the rest of the path as given. A file system that does not answer
 * within `timeoutMs` leaves the path as given (made absolute).
 *
 * @example
 * (await directoryLedger('/var/spool/audit')) === (await directoryLedger('/var/spool/audit/')); // true
 */
export async function directoryLedger(dir: string, timeoutMs = 2000): Promise<DirectoryLedger> {
  const key = await realDirectory(dir, timeoutMs);
  let ledger = ledgers.get(key);
  if (!ledger) ledgers.set(key, (ledger = new DirectoryLedger(key)));
  return ledger;
}

/** The real path of `path`, within `timeoutMs`, else `path` made absolute. Never rejects. */
async function realDirectory(path: string, timeoutMs: number): Promise<string> {
  let deadline: NodeJS.Timeout | undefined;
  const given = new Promise<string>((resolve) => {
    deadline = setTimeout(() => resolve(absolute(path)), timeoutMs);
    deadline.unref();
  });
  try {
    return await Promise.race([realPathOf(path), given]);
  } finally {
    clearTimeout(deadline);
  }
}

// Not resolve() first: it drops `link/..` by its letters, where the kernel goes to the parent of the link's target.
async function realPathOf(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (error) {
    const parent = dirname(path);
    if (parent === path || (error as NodeJS.ErrnoException).code !== 'ENOENT') return absolute(path);
    // The parent's real path has no link left in it: a `..` after it is read as the kernel reads it.
    return join(await realPathOf(parent), basename(path));
  }
}

function absolute(path: string): string {
  return isAbsolute(path) ? path : resolve(path);
}
