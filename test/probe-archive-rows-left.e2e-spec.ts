import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { gunzipSync } from 'node:zlib';
import { AuditSealer } from '../src/audit';
import { type ArchiveFiles, boundedArchiveFiles } from '../src/audit/lifecycle/archive-files';
import { writeArchive } from '../src/audit/lifecycle/archive-writer';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';
import { monthsAgo } from './support/past-months';

// Promise (docs/LIFECYCLE.md, audit-archive): "A disk under `--out` that does not answer … is a
// write error: … nothing archived, the transaction rolled back …; only `.partial` files may be
// left, never an archive"; and (docs/PRIVACY.md, "Erasure inside archives") `audit-erase
// --archive-dir DIR` erases the subject in every archive pair of DIR, an archive being written
// named (AUDIT_ARCHIVE_LOCKED) until it is in place.
//
// Break: the writer renames the rows file into place first, then the seals file. When the second
// rename fails (a disk error, or the deadline of a hung disk; or the process is killed there and its
// left lock is then removed by hand as the lock's message says), the run fails, removes its lock and
// leaves `audit-YYYY-MM.ndjson.gz` in DIR (not a `.partial`) without its seals file. audit-erase
// lists only `audit-*.seals.json`: it never reads that rows file, names nothing, and exits 0 while
// the subject's user id and personal values stay in DIR.
//
// Observed: writeArchive fails with EIO, no lock is left, `audit-erase --user u-3 --archive-dir DIR`
// exits 0 with nothing on stderr, and DIR still holds `audit-<month>.ndjson.gz` with "u-3" in it.
//
// Severity: medium (personal data kept after an erasure reported done; needs a failed or killed run
// at the last rename).
// Fix guess: the writer removes the rows file it renamed into place when the seals rename fails (or
// renames the seals file last only after writing the rows under a name the eraser reads); and
// audit-erase treats a rows file without its seals file as an archive being written (named, exit 1).
describe('probe: a rows file left by a failed archive write is never erased', () => {
  const database = 'probe_archive_rows_left';
  const trail = new ArchiveErasureTrail(database);
  const { log, erase } = trail;
  let archives: string;

  beforeAll(async () => {
    await trail.open();
    ({ archives } = trail);
    mkdirSync(archives, { mode: 0o700 });
    await log(1, 1, 'u-1');
    await log(1, 2, 'u-3');
    await trail.app.get(AuditSealer).sealNow();
  }, 180_000);

  afterAll(async () => {
    await trail.stop();
  });

  it('leaves no rows of an erased subject in DIR after a write whose seals rename failed', async () => {
    const late = monthsAgo(1).month;
    const failing = (): ArchiveFiles => {
      const files = boundedArchiveFiles(archives, 30_000);
      return {
        ...files,
        rename: async (from, to) => {
          if (to.endsWith('.seals.json')) throw Object.assign(new Error(`EIO: i/o error, rename '${from}' -> '${to}'`), { code: 'EIO' });
          return files.rename(from, to);
        },
      };
    };
    const writer = new Client({ connectionString: trail.url() });
    await writer.connect();
    try {
      const failed = await writeArchive(
        writer,
        { table: 'public.audit_log', month: late, out: archives, trail: `${database}/audit_log`, timeoutMs: 30_000 },
        failing(),
      ).then(
        () => null,
        (error: unknown) => (error as { code?: string }).code,
      );
      expect(failed).toBe('EIO');
    } finally {
      await writer.end();
    }
    // The failed run removed its lock: nothing tells a later run that an archive was being written.
    expect(readdirSync(archives).filter((name) => name.endsWith('.lock'))).toEqual([]);
    const erased = await erase(['--user', 'u-3']);
    const holding = readdirSync(archives).filter(
      (name) =>
        name.endsWith('.ndjson.gz') &&
        gunzipSync(readFileSync(join(archives, name)))
          .toString('utf8')
          .includes('"u-3"'),
    );
    // Either the erasure reaches every file of DIR that holds the subject, or it says it did not (exit 1).
    expect({ code: erased.code, holdingAfterExit0: erased.code === 0 ? holding : [] }).toEqual({
      code: erased.code,
      holdingAfterExit0: [],
    });
  }, 180_000);
});
