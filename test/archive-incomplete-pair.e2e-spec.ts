import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { gunzipSync } from 'node:zlib';
import { AuditSealer } from '../src/audit';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { type ArchiveFiles, boundedArchiveFiles } from '../src/audit/lifecycle/archive-files';
import { writeArchive } from '../src/audit/lifecycle/archive-writer';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';
import { monthsAgo } from './support/past-months';

// docs/LIFECYCLE.md, "Archives", and docs/PRIVACY.md, "Erasure inside archives": an archive's rows
// file is in DIR only with its seals file, and `audit-erase --archive-dir DIR` never passes over a
// file of DIR that holds the subject. A write whose seals file cannot be renamed into place removes
// the rows file it has just renamed (nothing left to erase, the erasure exits 0); a rows file left
// without its seals file all the same (a run killed between the two renames, its lock removed by
// hand) is named by the erasure, AUDIT_ARCHIVE_INCOMPLETE, exit 1, and once the month is archived
// again the same erasure erases in it and exits 0.
describe('an archive whose seals file never came into place', () => {
  const database = 'archive_incomplete_pair';
  const trail = new ArchiveErasureTrail(database);
  const { log, erase } = trail;
  const late = monthsAgo(1).month;
  let archives: string;

  beforeAll(async () => {
    await trail.open();
    ({ archives } = trail);
    mkdirSync(archives, { mode: 0o700 });
    await log(1, 1, 'u-1');
    await log(1, 2, 'u-3');
    await log(1, 3, 'u-5');
    await trail.app.get(AuditSealer).sealNow();
  }, 180_000);

  afterAll(async () => {
    await trail.stop();
  });

  /** The files of DIR that hold `user`'s id. */
  const holding = (user: string) =>
    readdirSync(archives).filter(
      (name) =>
        (name.endsWith('.ndjson.gz') &&
          gunzipSync(readFileSync(join(archives, name)))
            .toString('utf8')
            .includes(`"${user}"`)) ||
        (name.endsWith('.json') && readFileSync(join(archives, name), 'utf8').includes(`"${user}"`)),
    );

  /** Writes the month's archive with the seals file's rename failing; `killed`: the rows file is left as a killed run leaves it. */
  const failedWrite = async (killed: boolean) => {
    const files = boundedArchiveFiles(archives, 30_000);
    const failing: ArchiveFiles = {
      ...files,
      rename: async (from, to) => {
        if (to.endsWith('.seals.json')) throw Object.assign(new Error(`EIO: i/o error, rename '${from}' -> '${to}'`), { code: 'EIO' });
        return files.rename(from, to);
      },
      discard: (path) => (killed && path.endsWith('.ndjson.gz') ? Promise.resolve() : files.discard(path)),
    };
    const writer = new Client({ connectionString: trail.url() });
    await writer.connect();
    try {
      return await writeArchive(
        writer,
        { table: 'public.audit_log', month: late, out: archives, trail: `${database}/audit_log`, timeoutMs: 30_000 },
        failing,
      ).then(
        () => null,
        (error: unknown) => (error as { code?: string }).code,
      );
    } finally {
      await writer.end();
    }
  };

  it('a write whose seals rename fails leaves neither its rows file nor its lock: the erasure then has nothing left in DIR', async () => {
    expect(await failedWrite(false)).toBe('EIO');
    expect(readdirSync(archives)).toEqual([]);
    const erased = await erase(['--user', 'u-3']);
    expect({ code: erased.code, err: erased.err }).toEqual({ code: 0, err: [] });
    expect(holding('u-3')).toEqual([]);
  }, 180_000);

  it('a rows file left without its seals file is named by the erasure (exit 1), and erased once the month is archived again', async () => {
    expect(await failedWrite(true)).toBe('EIO');
    const rowsPath = join(archives, `audit-${late}.ndjson.gz`);
    expect({ dir: readdirSync(archives), holding: holding('u-5') }).toEqual({
      dir: [`audit-${late}.ndjson.gz`],
      holding: [`audit-${late}.ndjson.gz`],
    });
    const named = await erase(['--user', 'u-5']);
    expect({ code: named.code, err: named.err }).toEqual({
      code: 1,
      err: [
        `archive ${late}: FAILED AUDIT_ARCHIVE_INCOMPLETE: ${rowsPath} has no seals file beside it (an archive write that failed or ` +
          `was killed before its seals file was in place), and was not read: write the month's archive again ` +
          `(audit-archive --month ${late} --out ${archives}) while the month is in the database, or put its seals file back, ` +
          'then run the same erasure again',
      ],
    });
    // The database erasure committed: the month archived again holds the rows erased.
    const out: string[] = [];
    const archived = await runArchive(
      ['--url', trail.url(), '--month', late, '--out', archives],
      {},
      { out: (l) => out.push(l), err: (l) => out.push(l) },
    );
    expect(archived).toBe(0);
    const again = await erase(['--user', 'u-5']);
    expect({ code: again.code, err: again.err }).toEqual({ code: 0, err: [] });
    expect(holding('u-5')).toEqual([]);
    const checked = await trail.verifySeals(join(archives, `audit-${late}.seals.json`));
    expect({ code: checked.code, anomalies: checked.anomalies }).toEqual({ code: 0, anomalies: [] });
  }, 180_000);
});
