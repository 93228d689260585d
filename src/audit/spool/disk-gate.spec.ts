import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boundedFiles } from './bounded-files';
import { DISK_CALLS_IN_FLIGHT } from './disk-gate';
import { nodeSpoolFiles, type SpoolFiles } from './spool-files';

// docs/FAILURES.md, a hung disk: the spool, the quarantine and the chain memory under one spoolDir
// each wrap the file system, but they share one gate: at most DISK_CALLS_IN_FLIGHT calls on the
// disk at once, and once one hung, no new call of any of them reaches it until that one returns.

const disks: { releaseAll: () => Promise<void> }[] = [];

/** A disk whose every call waits until released; `reached` counts the calls that got to it. */
function heldDisk() {
  const state = { reached: 0, onDisk: 0, most: 0, held: [] as (() => void)[] };
  const hold = async <T>(value: T): Promise<T> => {
    state.reached += 1;
    state.onDisk += 1;
    state.most = Math.max(state.most, state.onDisk);
    await new Promise<void>((resolve) => state.held.push(resolve));
    state.onDisk -= 1;
    return value;
  };
  const files: SpoolFiles = {
    ...nodeSpoolFiles,
    mkdir: () => hold(undefined),
    readdir: () => hold(['segment']),
    readFile: () => hold('{}'),
    writeFile: () => hold(undefined),
  };
  const releaseAll = async () => {
    while (state.held.length > 0) {
      state.held.splice(0).forEach((release) => release());
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  const disk = { state, files, releaseAll };
  disks.push(disk);
  return disk;
}

const diskDir = () => join(tmpdir(), `audit-disk-gate-${randomBytes(4).toString('hex')}`);

describe('one gate per disk', () => {
  afterEach(async () => {
    for (const disk of disks.splice(0)) await disk.releaseAll();
  });

  it(`lets at most ${DISK_CALLS_IN_FLIGHT} calls of all the users of a disk on it at once; the others wait their turn`, async () => {
    const disk = heldDisk();
    const dir = diskDir();
    // Deadlines far off: this is the bound before any of them passes.
    const spool = boundedFiles(disk.files, 60_000, dir);
    const quarantine = boundedFiles(disk.files, 60_000, join(dir, '.'));
    const calls = [
      spool.readdir(dir),
      spool.mkdir(dir, 0o700),
      quarantine.writeFile('q', 'x', 0o600),
      quarantine.readFile('q'),
      spool.readdir(dir),
    ];
    await new Promise((resolve) => setImmediate(resolve));
    expect(disk.state.reached).toBe(DISK_CALLS_IN_FLIGHT);

    await disk.releaseAll();
    await expect(Promise.all(calls)).resolves.toEqual([['segment'], undefined, undefined, '{}', ['segment']]);
    expect({ reached: disk.state.reached, most: disk.state.most }).toEqual({ reached: 5, most: DISK_CALLS_IN_FLIGHT });
    expect([spool.timeouts, quarantine.timeouts]).toEqual([0, 0]);
  });

  it('once a call hung, refuses every other user the disk until it returns, and counts the hung call once, where it was made', async () => {
    const disk = heldDisk();
    const dir = diskDir();
    const quarantine = boundedFiles(disk.files, 100, dir);
    const spool = boundedFiles(disk.files, 10_000, dir);
    const memory = boundedFiles(disk.files, 10_000, dir);

    const hung = quarantine.writeFile('q', 'x', 0o600);
    const beside = spool.readdir(dir);
    const waiting = memory.readFile('chain');
    await expect(hung).rejects.toMatchObject({ code: 'AUDIT_DISK_TIMEOUT', operation: 'writeFile', stalled: false });
    // Waiting for room when the disk hung: refused, never handed to it.
    await expect(waiting).rejects.toMatchObject({ code: 'AUDIT_DISK_TIMEOUT', operation: 'readFile', stalled: true });
    await expect(memory.writeFile('chain', '{}', 0o600)).rejects.toMatchObject({ code: 'AUDIT_DISK_TIMEOUT', stalled: true });
    await expect(spool.mkdir(dir, 0o700)).rejects.toMatchObject({ code: 'AUDIT_DISK_TIMEOUT', stalled: true });
    expect([spool.stalled, memory.stalled]).toEqual([true, true]);
    expect(disk.state.reached).toBe(2);
    expect([quarantine.timeouts, spool.timeouts, memory.timeouts]).toEqual([1, 0, 0]);

    await disk.releaseAll();
    await expect(beside).resolves.toEqual(['segment']);
    expect([quarantine.stalled, spool.stalled]).toEqual([false, false]);
    const after = spool.readdir(dir);
    await disk.releaseAll();
    await expect(after).resolves.toEqual(['segment']);
    expect([quarantine.timeouts, spool.timeouts, memory.timeouts]).toEqual([1, 0, 0]);
  });

  it('refuses a call that waited its turn past its own deadline without handing it to the disk, and counts nothing', async () => {
    const disk = heldDisk();
    const dir = diskDir();
    const spool = boundedFiles(disk.files, 10_000, dir);
    const memory = boundedFiles(disk.files, 100, dir);
    const onDisk = [spool.readdir(dir), spool.readFile('segment')];
    await expect(memory.readFile('chain')).rejects.toMatchObject({ code: 'AUDIT_DISK_TIMEOUT', operation: 'readFile', stalled: true });
    expect({ reached: disk.state.reached, timeouts: [spool.timeouts, memory.timeouts], stalled: memory.stalled }).toEqual({
      reached: 2,
      timeouts: [0, 0],
      stalled: false,
    });
    await disk.releaseAll();
    await expect(Promise.all(onDisk)).resolves.toEqual([['segment'], '{}']);
  });

  it('keeps disks apart: a hung call on one directory refuses nothing on another', async () => {
    const disk = heldDisk();
    const hungDir = diskDir();
    const hung = boundedFiles(disk.files, 100, hungDir).readdir(hungDir);
    await expect(hung).rejects.toMatchObject({ code: 'AUDIT_DISK_TIMEOUT', stalled: false });
    const otherDir = diskDir();
    const other = boundedFiles({ ...nodeSpoolFiles, readdir: () => Promise.resolve(['segment']) }, 10_000, otherDir);
    await expect(other.readdir(otherDir)).resolves.toEqual(['segment']);
    await disk.releaseAll();
  });
});
