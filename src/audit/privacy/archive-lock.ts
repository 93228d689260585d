import { readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { type ArchiveFiles } from '../lifecycle/archive-files';

/** The commands that take an archive's lock: the eraser rewriting it, and the two that write it. */
export type ArchiveLockCommand = 'audit-erase' | 'audit-archive' | 'audit-retention';

/** What a lock file says of the run that holds it. */
interface LockHolder {
  pid?: unknown;
  host?: unknown;
  since?: unknown;
  command?: unknown;
}

/**
 * Who holds a lock found in place: `message` names it (or says the file is empty or unreadable),
 * `command` is the command that wrote it (a lock written before locks named their command is an
 * `audit-erase`'s), null when the file names no run.
 */
export interface ArchiveLockHeld {
  message: string;
  command: string | null;
}

const LOCK_FILE = /^audit-((?:legacy\.\.)?\d{4}-\d{2})\.seals\.json\.lock$/;

/**
 * Runs `work` holding the archive's lock: `<seals file>.lock`, created only when no file is there
 * (`wx`), written in one write (the run's pid, host, start and `command`) and removed when `work`
 * ends. `audit-erase --archive-dir` holds it while it rewrites an archive; `audit-archive` and
 * `audit-retention --archive-dir` hold it from before their database snapshot until the archive's
 * files are in place. A second run at the same archive fails with `AUDIT_ARCHIVE_LOCKED`, its files
 * untouched. A lock whose content could not be written (a full disk) is removed at once and the
 * error thrown: only a run that was killed leaves its lock, and the error says so when its process
 * (on this host) is gone, and names the file.
 *
 * @example
 * const erased = await withArchiveLock(files, plan.sealsPath, () => rewrite());
 */
export async function withArchiveLock<T>(
  files: ArchiveFiles,
  sealsPath: string,
  work: () => Promise<T>,
  command: ArchiveLockCommand = 'audit-erase',
): Promise<T> {
  const lockPath = `${sealsPath}.lock`;
  const holder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), command };
  try {
    await files.createNew(lockPath, `${JSON.stringify(holder)}\n`);
  } catch (error) {
    if ((error as { code?: string }).code !== 'EEXIST') throw error;
    const held = await archiveLockHeld(lockPath);
    const message = held?.message ?? `${lockPath} was held by another run a moment ago: run again once it has ended`;
    throw Object.assign(new Error(message), { code: 'AUDIT_ARCHIVE_LOCKED' });
  }
  try {
    return await work();
  } finally {
    await files.discard(lockPath);
  }
}

/**
 * Who holds the lock at `lockPath` (null: no lock is there now), and whether that run is gone. An empty lock names no run: it
 * is left by a run that created it and could not write it (killed in between, or a disk whose
 * removal failed too), or is being written by a run starting this instant (a lock is written in
 * one write right after its creation); it is never taken for a run that is gone, nor removed here.
 *
 * @example
 * const held = await archiveLockHeld('/var/archive/audit/audit-2026-01.seals.json.lock'); // null: no lock there now
 * console.log(held?.message);
 */
export async function archiveLockHeld(lockPath: string): Promise<ArchiveLockHeld | null> {
  let text: string;
  try {
    text = await readFile(lockPath, 'utf8');
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return null;
    return {
      message: `${lockPath} cannot be read (${(error as { code?: string }).code ?? 'error'}): remove that file once no run is going`,
      command: null,
    };
  }
  if (text.trim() === '') {
    return {
      message:
        `${lockPath} is empty: left by a run that could not write it, or being written by a run starting now: ` +
        'remove that file once no run is going',
      command: null,
    };
  }
  let held: LockHolder;
  try {
    held = JSON.parse(text) as LockHolder;
    if (!held || typeof held !== 'object') throw new Error('not an object');
  } catch {
    return { message: `${lockPath} names no run (not a lock this version reads): remove that file once no run is going`, command: null };
  }
  const command = typeof held.command === 'string' ? held.command : 'audit-erase';
  const who = `${command} pid ${String(held.pid ?? '?')} on ${String(held.host ?? '?')} since ${String(held.since ?? '?')}`;
  const gone = held.host === hostname() && typeof held.pid === 'number' && !running(held.pid);
  const doing = command === 'audit-erase' ? 'erasing in this archive' : 'writing this archive';
  return {
    message: gone
      ? `${lockPath} was left by ${who}, which is no longer running: remove that file`
      : `${lockPath} is held by ${who}: another run is ${doing} (remove the file only if that run is gone)`,
    command,
  };
}

/**
 * The archives of `dir` whose lock is held by anything but an erasure: being written by
 * `audit-archive` or `audit-retention --archive-dir` (perhaps from a snapshot older than an erasure
 * that just committed), left by such a run, or empty. By archive month, each with its lock's message.
 *
 * @example
 * const writing = await archivesBeingWritten('/var/archive/audit'); // Map { '2026-01' => '… is held by audit-archive pid …' }
 */
export async function archivesBeingWritten(dir: string): Promise<Map<string, string>> {
  const writing = new Map<string, string>();
  for (const name of (await readdir(dir)).sort()) {
    const month = LOCK_FILE.exec(name)?.[1];
    if (month === undefined) continue;
    // A lock gone since the listing was removed by its run: that archive is in place now, or was never written.
    const held = await archiveLockHeld(join(dir, name));
    if (held && held.command !== 'audit-erase') writing.set(month, held.message);
  }
  return writing;
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}
