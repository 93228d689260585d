import { type Client } from 'pg';
import { type ArchiveFile, type ArchiveFiles } from './archive-files';
import { writeArchive } from './archive-writer';

// A power loss cannot be cut in a test: the order of the file calls is what keeps an archive whole
// through one (each file fsynced before its rename, the directory between the rows file's rename
// and the seals file's, so that a seals file in place has its rows, and after the renames, all
// before writeArchive resolves and retention may drop the month).

/** A client for a month with no row (nothing unsealed, no seal): the archive is two files all the same. */
function emptyMonthClient(): Client {
  const query = (sql: unknown) =>
    Promise.resolve({ rows: typeof sql === 'string' && sql.includes('AS unsealed') ? [{ unsealed: 0 }] : [] });
  return { query } as unknown as Client;
}

/**
 * Records each call as `call path`; each `syncDirectory` waits for its release in `held` (by call,
 * the latest), and `release` counts those released.
 */
function recordingFiles(made: string | undefined, fail?: string) {
  const calls: string[] = [];
  const held = new Map<string, () => void>();
  const step = async (call: string) => {
    calls.push(call);
    if (call === fail) throw Object.assign(new Error(`${call} failed`), { code: 'EIO' });
    if (call.startsWith('syncDirectory')) await new Promise<void>((release) => held.set(call, release));
  };
  /** Releases the `n`th (from 1) call of `call`, once it is made. */
  const release = async (call: string, n = 1) => {
    await settle(() => calls.filter((c) => c === call).length >= n && held.has(call));
    const go = held.get(call);
    held.delete(call);
    go?.();
  };
  const files: ArchiveFiles = {
    mkdir: async (path) => {
      await step(`mkdir ${path}`);
      return made;
    },
    create: async (path) => {
      await step(`create ${path}`);
      const file: ArchiveFile = {
        write: () => step(`write ${path}`),
        sync: () => step(`sync ${path}`),
        close: () => step(`close ${path}`),
      };
      return file;
    },
    writeFile: (path) => step(`writeFile ${path}`),
    createNew: (path) => step(`createNew ${path}`),
    readText: async (path) => {
      await step(`readText ${path}`);
      return null;
    },
    rename: (from, to) => step(`rename ${from} ${to}`),
    syncDirectory: (path) => step(`syncDirectory ${path}`),
    discard: (path) => step(`discard ${path}`),
  };
  return { files, calls, release };
}

const run = { table: 'public.audit_log', month: '2026-01', out: '/archive/audit', trail: 'app/audit_log', timeoutMs: 30_000 };
const rows = '/archive/audit/audit-2026-01.ndjson.gz';
const seals = '/archive/audit/audit-2026-01.seals.json';

/**
 * Waits until `done` holds (for at most 10 s): the rows go through gzip, whose work runs on the
 * thread pool, so on a busy machine the calls come after any fixed number of event-loop turns.
 */
async function settle(done: () => boolean): Promise<void> {
  const until = Date.now() + 10_000;
  while (!done() && Date.now() < until) await new Promise((next) => setTimeout(next, 1));
  expect(done()).toBe(true);
}

describe('writeArchive: an archive on the disk before it is reported written', () => {
  it('fsyncs each file before its rename, the directory between the renames and after them, and resolves only then', async () => {
    const { files, calls, release } = recordingFiles(undefined);
    let resolved = false;
    const written = writeArchive(emptyMonthClient(), run, files).then((result) => ((resolved = true), result));
    await release(`syncDirectory ${run.out}`, 1);
    await settle(() => calls.filter((c) => c === `syncDirectory ${run.out}`).length === 2);
    expect(resolved).toBe(false);
    await release(`syncDirectory ${run.out}`, 2);
    const result = await written;
    expect(result.written).toBe(true);
    const order = calls.filter((call) => !call.startsWith('write ') && !call.startsWith('discard '));
    expect(order).toEqual([
      `mkdir ${run.out}`,
      `createNew ${seals}.lock`,
      `create ${rows}.partial`,
      `sync ${rows}.partial`,
      `close ${rows}.partial`,
      `create ${seals}.partial`,
      `sync ${seals}.partial`,
      `close ${seals}.partial`,
      `readText ${seals}`,
      `rename ${rows}.partial ${rows}`,
      `syncDirectory ${run.out}`,
      `rename ${seals}.partial ${seals}`,
      `syncDirectory ${run.out}`,
    ]);
    expect(calls.indexOf(`write ${rows}.partial`)).toBeLessThan(calls.indexOf(`sync ${rows}.partial`));
    expect(calls.indexOf(`write ${seals}.partial`)).toBeLessThan(calls.indexOf(`sync ${seals}.partial`));
  });

  it('fsyncs the directories that hold the entries of those it made, nearest first', async () => {
    const { files, calls, release } = recordingFiles('/archive');
    const written = writeArchive(emptyMonthClient(), run, files);
    await release(`syncDirectory ${run.out}`, 1);
    await release(`syncDirectory ${run.out}`, 2);
    await release('syncDirectory /archive');
    await release('syncDirectory /');
    expect((await written).written).toBe(true);
    expect(calls.filter((call) => call.startsWith('syncDirectory'))).toEqual([
      `syncDirectory ${run.out}`,
      `syncDirectory ${run.out}`,
      'syncDirectory /archive',
      'syncDirectory /',
    ]);
  });

  it.each([`sync ${rows}.partial`, `sync ${seals}.partial`])('renames nothing when %s fails, and rejects', async (failing) => {
    const { files, calls } = recordingFiles(undefined, failing);
    await expect(writeArchive(emptyMonthClient(), run, files)).rejects.toThrow(`${failing} failed`);
    expect(calls.filter((call) => call.startsWith('rename') || call.startsWith('syncDirectory'))).toEqual([]);
    expect(calls.slice(-3)).toEqual([`discard ${rows}.partial`, `discard ${seals}.partial`, `discard ${seals}.lock`]);
  });

  it('removes the rows file it renamed into place when the seals file cannot follow it, and rejects', async () => {
    const { files, calls, release } = recordingFiles(undefined, `rename ${seals}.partial ${seals}`);
    const written = writeArchive(emptyMonthClient(), run, files);
    await release(`syncDirectory ${run.out}`, 1);
    await expect(written).rejects.toThrow(`rename ${seals}.partial ${seals} failed`);
    expect(calls.slice(calls.indexOf(`rename ${rows}.partial ${rows}`))).toEqual([
      `rename ${rows}.partial ${rows}`,
      `syncDirectory ${run.out}`,
      `rename ${seals}.partial ${seals}`,
      `discard ${rows}`,
      `discard ${rows}.partial`,
      `discard ${seals}.partial`,
      `discard ${seals}.lock`,
    ]);
  });
});
