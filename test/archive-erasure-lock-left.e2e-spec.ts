import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';
import { type Build, buildProject } from './support/build';

// An archive's lock, `<seals file>.lock` (docs/LIFECYCLE.md, "Archives and erasure"), is removed at
// the end of the run that made it, a failed run included: a disk that creates the lock file but
// refuses its content (a full disk: run here under a file-size limit of 0, SIGXFSZ ignored, so the
// write answers EFBIG) fails the run (exit 1, the archive as it was) and leaves no lock, and the
// same erasure run again finishes it. A lock with no content names no run: it is named as empty
// (left by a run that could not write it, or being written this instant), never as held by an
// unknown pid.
describe('an archive lock whose write failed', () => {
  const trail = new ArchiveErasureTrail('archlockleft');
  const { month, log, erase, sealsOf, rowsOf } = trail;
  let build: Build;

  /** `audit-erase` built and run as the operator runs it, on a disk that creates files and refuses their blocks. */
  const eraseOnFullDisk = (args: string[]): Promise<{ code: number | null; err: string }> =>
    new Promise((resolve) => {
      const cli = join(build.dir, 'src/audit/privacy/erase.cli.js');
      const quoted = ['--url', trail.url(), '--by', 'dpo', '--archive-dir', trail.archives, ...args].map(
        (a) => `'${a.replaceAll("'", "'\\''")}'`,
      );
      const child = spawn('bash', ['-c', `trap '' XFSZ; ulimit -f 0; exec '${process.execPath}' '${cli}' ${quoted.join(' ')}`], {
        env: { ...build.env, AUDIT_INTEGRITY_ENTRY_KEY: trail.entryKey, AUDIT_DATABASE_URL: '', DATABASE_URL: '' },
      });
      let err = '';
      child.stdout.resume();
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.on('close', (code) => resolve({ code, err: err.trim() }));
    });

  beforeAll(async () => {
    build = buildProject();
    await trail.start(async () => {
      await log(2, 1, 'u-7');
      await log(2, 2, 'u-8');
    });
  }, 180_000);

  afterAll(async () => {
    await trail.stop();
    if (build) rmSync(build.dir, { recursive: true, force: true });
  });

  it('a run whose lock could not be written leaves no lock, and the same erasure run again finishes it', async () => {
    const lock = `${sealsOf(trail.archives)}.lock`;
    const before = readFileSync(rowsOf(trail.archives));
    const failed = await eraseOnFullDisk(['--user', 'u-7']);
    // The run failed on the disk, as it should, and left the archive as it was.
    expect({ code: failed.code, err: failed.err }).toEqual({ code: 1, err: expect.stringMatching(/FAILED EFBIG/) });
    expect(readFileSync(rowsOf(trail.archives)).equals(before)).toBe(true);
    // The promise: that run ended, so its lock is gone, and the erasure run again finishes.
    const left = existsSync(lock);
    const again = await erase(['--user', 'u-7']);
    expect({ left, code: again.code, err: again.err }).toEqual({ left: false, code: 0, err: [] });
    expect(
      gunzipSync(readFileSync(rowsOf(trail.archives)))
        .toString('utf8')
        .includes('"u-7"'),
    ).toBe(false);
  }, 120_000);

  it('an empty lock is named as empty, not as held by a run, and the erasure finishes once it is removed', async () => {
    const lock = `${sealsOf(trail.archives)}.lock`;
    writeFileSync(lock, '');
    const stopped = await erase(['--user', 'u-8']);
    expect({ code: stopped.code, err: stopped.err }).toEqual({
      code: 1,
      err: [
        expect.stringMatching(
          new RegExp(
            `^archive ${month}: FAILED AUDIT_ARCHIVE_LOCKED: .*\\.seals\\.json\\.lock is empty: left by a run that could not write it, or being written by a run starting now: remove that file once no run is going`,
          ),
        ),
      ],
    });
    expect(stopped.err[0]).not.toMatch(/pid \?/);
    rmSync(lock);
    const again = await erase(['--user', 'u-8']);
    expect({ code: again.code, err: again.err }).toEqual({ code: 0, err: [] });
    expect(
      gunzipSync(readFileSync(rowsOf(trail.archives)))
        .toString('utf8')
        .includes('"u-8"'),
    ).toBe(false);
  }, 120_000);
});
