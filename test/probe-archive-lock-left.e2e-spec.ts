import { type INestApplication } from '@nestjs/common';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { runErase } from '../src/audit/privacy/erase-command';
import { type Build, buildProject } from './support/build';
import { sealingKeys } from './support/integrity';
import { monthsAgo } from './support/past-months';
import { type TestPostgres } from './support/postgres';
import { startArchiveTrail, stopArchiveTrail } from './support/archive-trail';
import { type StderrCapture } from './support/stderr';

// Promise (docs/LIFECYCLE.md, "Archives and erasure"): "Each archive is rewritten under its lock,
// `<seals file>.lock` (created only when absent, holding the run's pid, host and start, removed at
// the end)"; a lock stays only when "a run that was killed leaves its lock"; "A failure leaves the
// old rows file in place and an archive that verifies; the command exits 1, and running the same
// erasure again finishes it."
//
// Break: the lock is created (`open(…, 'wx')`) and then written; when that write fails (a full
// archive disk: the file is created, its first block is refused), `createNew` neither closes the
// gap nor removes the file, and `withArchiveLock` rethrows without removing it. The run ends (exit
// 1, not killed) and leaves an empty lock behind. Every later run of any erasure then fails for that
// archive with AUDIT_ARCHIVE_LOCKED, told that "another run is erasing in this archive" by
// "audit-erase pid ? on ? since ?" (the empty file names no run, so it is never named as gone),
// and "running the same erasure again" never finishes it until someone removes the file by hand.
// Here the disk is made to refuse the first block as a full one does: the command runs under a
// file-size limit of 0 (SIGXFSZ ignored, so write answers EFBIG), which lets it create files but
// write none.
// Observed: the failed run exits 1 with `FAILED EFBIG`, `<seals file>.lock` is left (0 bytes),
// and the next run, on a healthy disk, fails `AUDIT_ARCHIVE_LOCKED: … is held by audit-erase pid ?
// on ? since ?: another run is erasing in this archive`.
// Severity: medium (fails closed: nothing is lost, but the erasure inside the archive, a legal
// duty, stalls behind a message that blames a run that does not exist).
// Fix guess: in `withArchiveLock`, remove the lock file when `createNew` fails with anything but
// EEXIST (or have `createNew` unlink the file it created when its write or fsync fails); and name
// an empty or unreadable lock as one no run holds.
describe('probe: a lock whose write failed is not left behind', () => {
  const database = 'probelockleft';
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  const month = monthsAgo(2).month;
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  let archives: string;
  let build: Build;

  const at = (k: number, hour: number) => new Date(Date.parse(monthsAgo(k).start) + hour * 3_600_000);
  const log = (k: number, hour: number, userId: string) =>
    app.get(AuditService).log({
      action: 'nda_created',
      entityType: 'Nda',
      entityId: `nda-${k}-${hour}`,
      userId,
      ip: '10.0.0.1',
      occurredAt: at(k, hour),
    });
  const sealsOf = (where: string) => join(where, `audit-${month}.seals.json`);
  const rowsOf = (where: string) => join(where, `audit-${month}.ndjson.gz`);
  const erase = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runErase(
      ['--url', db.url(database), '--by', 'dpo', '--archive-dir', archives, ...args],
      { AUDIT_INTEGRITY_ENTRY_KEY: entryKey },
      { out: (l) => out.push(l), err: (l) => err.push(l) },
    );
    return { code, out, err };
  };
  /** `audit-erase` built and run as the operator runs it, on a disk that creates files and refuses their blocks. */
  const eraseOnFullDisk = (args: string[]): Promise<{ code: number | null; err: string }> =>
    new Promise((resolve) => {
      const cli = join(build.dir, 'src/audit/privacy/erase.cli.js');
      const quoted = ['--url', db.url(database), '--by', 'dpo', '--archive-dir', archives, ...args].map(
        (a) => `'${a.replaceAll("'", "'\\''")}'`,
      );
      const child = spawn('bash', ['-c', `trap '' XFSZ; ulimit -f 0; exec '${process.execPath}' '${cli}' ${quoted.join(' ')}`], {
        env: { ...build.env, AUDIT_INTEGRITY_ENTRY_KEY: entryKey, AUDIT_DATABASE_URL: '', DATABASE_URL: '' },
      });
      let err = '';
      child.stdout.resume();
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.on('close', (code) => resolve({ code, err: err.trim() }));
    });

  beforeAll(async () => {
    build = buildProject();
    ({ dir, db, app, stderr } = await startArchiveTrail(database, 3, keys, entryKey));
    archives = join(dir, 'archives');
    await log(2, 1, 'u-7');
    await log(2, 2, 'u-8');
    await app.get(AuditSealer).sealNow();
    const out: string[] = [];
    const code = await runRetention(
      ['--url', db.url(database), '--signing-key', join(dir, 'seal.key'), '--months', '1', '--archive-dir', archives],
      {},
      {
        out: (line) => out.push(line),
        err: (line) => (line.includes(`"event":"${AUDIT_EVENTS.retained}"`) ? undefined : out.push(line)),
      },
    );
    expect({ code, retired: out.filter((l) => l.startsWith(`RETIRED ${month}`)).length }).toEqual({ code: 0, retired: 1 });
  }, 180_000);

  afterAll(async () => {
    await stopArchiveTrail({ app, db, stderr, dir });
    if (build) rmSync(build.dir, { recursive: true, force: true });
  });

  it('a run whose lock could not be written leaves no lock, and the same erasure run again finishes it', async () => {
    const lock = `${sealsOf(archives)}.lock`;
    const before = readFileSync(rowsOf(archives));
    const failed = await eraseOnFullDisk(['--user', 'u-7']);
    // The run failed on the disk, as it should, and left the archive as it was.
    expect({ code: failed.code, err: failed.err }).toEqual({ code: 1, err: expect.stringMatching(/FAILED EFBIG/) });
    expect(readFileSync(rowsOf(archives)).equals(before)).toBe(true);
    // The promise: that run ended, so its lock is gone, and the erasure run again finishes.
    const left = existsSync(lock);
    const again = await erase(['--user', 'u-7']);
    expect({ left, code: again.code, err: again.err }).toEqual({ left: false, code: 0, err: [] });
  }, 120_000);
});
