import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { type ArchiveFiles } from '../lifecycle/archive-files';

/** What a lock file says of the run that holds it. */
interface LockHolder {
  pid?: unknown;
  host?: unknown;
  since?: unknown;
}

/**
 * Runs `work` holding the archive's lock: `<seals file>.lock`, created only when no file is there
 * (`wx`) and removed when `work` ends. Two `audit-erase --archive-dir` runs never rewrite the same
 * archive at once: the second fails with `AUDIT_ARCHIVE_LOCKED`, its files untouched. A lock left by
 * a run that was killed stays until removed by hand: the error says so when its process (on this
 * host) is gone, and names the file.
 *
 * @example
 * const erased = await withArchiveLock(files, plan.sealsPath, () => rewrite());
 */
export async function withArchiveLock<T>(files: ArchiveFiles, sealsPath: string, work: () => Promise<T>): Promise<T> {
  const lockPath = `${sealsPath}.lock`;
  const holder = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  try {
    await files.createNew(lockPath, `${JSON.stringify(holder)}\n`);
  } catch (error) {
    if ((error as { code?: string }).code !== 'EEXIST') throw error;
    throw Object.assign(new Error(await heldBy(lockPath)), { code: 'AUDIT_ARCHIVE_LOCKED' });
  }
  try {
    return await work();
  } finally {
    await files.discard(lockPath);
  }
}

/** Who holds the lock, and whether that run is gone. */
async function heldBy(lockPath: string): Promise<string> {
  let held: LockHolder = {};
  try {
    held = JSON.parse(await readFile(lockPath, 'utf8')) as LockHolder;
  } catch {
    // Unreadable or removed since: named as held by an unknown run.
  }
  const who = `audit-erase pid ${String(held.pid ?? '?')} on ${String(held.host ?? '?')} since ${String(held.since ?? '?')}`;
  const gone = held.host === hostname() && typeof held.pid === 'number' && !running(held.pid);
  return gone
    ? `${lockPath} was left by ${who}, which is no longer running: remove that file, then erase the subject again`
    : `${lockPath} is held by ${who}: another run is erasing in this archive (remove the file only if that run is gone)`;
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}
