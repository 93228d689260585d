import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';
import { monthsAgo } from './support/past-months';

// docs/LIFECYCLE.md, "Archives": once `audit-retention --archive-dir DIR` has archived and removed a
// month, its archive is the month's only copy. `audit-archive --month <that month> --out DIR` (a
// scheduled "archive last month" job that runs after retention, or the same job retried) refuses it
// (AUDIT_MONTH_RETIRED, exit 1) and leaves the pair as retention wrote it, verifying clean. A month
// still in the database is archived again over its archive (a rerun), but never over an archive
// that holds more of the month's rows (AUDIT_ARCHIVE_FEWER_ROWS), nor over a seals file that is not
// the month's (AUDIT_ARCHIVE_EXISTS): the archive in place is kept, byte for byte.
describe('audit-archive never replaces an archive with fewer of its rows', () => {
  const database = 'archive_retired_month';
  const trail = new ArchiveErasureTrail(database);
  const { log, month } = trail;
  const live = monthsAgo(1).month;

  beforeAll(async () => {
    await trail.start(async () => {
      await log(2, 1, 'u-1');
      await log(2, 2, 'u-2');
      await log(1, 1, 'u-3');
      await log(1, 2, 'u-4');
    });
  }, 180_000);

  afterAll(async () => {
    await trail.stop();
  });

  const archive = async (target: string, archived: string) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runArchive(
      ['--url', trail.url(), '--month', archived, '--out', target],
      {},
      {
        out: (l) => out.push(l),
        err: (l) => err.push(l),
      },
    );
    return { code, out, err };
  };
  const pair = (target: string, archived: string) => ({
    rows: readFileSync(join(target, `audit-${archived}.ndjson.gz`)),
    seals: readFileSync(join(target, `audit-${archived}.seals.json`), 'utf8'),
  });

  it("refuses a month retention removed, keeping its archive's rows and seals and a clean offline check", async () => {
    const before = pair(trail.archives, month);
    expect((await trail.verifyArchive(trail.archives)).code).toBe(0);
    const run = await archive(trail.archives, month);
    expect(run).toEqual({
      code: 1,
      out: [],
      err: [
        expect.stringMatching(
          new RegExp(
            `^audit-archive refused: AUDIT_MONTH_RETIRED: ${month} was removed by retention \\(its retention checkpoint is seal \\d+\\): ` +
              `the database holds none of its rows, and the archive retention wrote of it is the month's only copy; nothing written$`,
          ),
        ),
      ],
    });
    expect(pair(trail.archives, month)).toEqual(before);
    const checked = await trail.verifyArchive(trail.archives);
    expect({ code: checked.code, anomalies: checked.anomalies }).toEqual({ code: 0, anomalies: [] });
  }, 180_000);

  it('refuses it into another directory too: nothing written there', async () => {
    const elsewhere = join(trail.dir, 'elsewhere');
    const run = await archive(elsewhere, month);
    expect({ code: run.code, err: run.err.map((l) => l.split(':').slice(0, 2).join(':')) }).toEqual({
      code: 1,
      err: ['audit-archive refused: AUDIT_MONTH_RETIRED'],
    });
  }, 180_000);

  it('archives a month still in the database again over its archive (a rerun)', async () => {
    const target = join(trail.dir, 'live');
    const first = await archive(target, live);
    const again = await archive(target, live);
    expect({ first: first.code, again: again.code, said: again.out.at(-1) }).toEqual({
      first: 0,
      again: 0,
      said: `audit-archive: ${live} archived; check it with audit-verify --archive ${join(target, `audit-${live}.seals.json`)}`,
    });
    expect((await trail.verifySeals(join(target, `audit-${live}.seals.json`))).code).toBe(0);
  }, 180_000);

  it('keeps an archive in place that holds more of the month rows than the database now', async () => {
    const target = join(trail.dir, 'live');
    const sealsPath = join(target, `audit-${live}.seals.json`);
    const header = JSON.parse(readFileSync(sealsPath, 'utf8')) as { monthRows: number };
    writeFileSync(sealsPath, JSON.stringify({ ...header, monthRows: header.monthRows + 1 }));
    const before = pair(target, live);
    const run = await archive(target, live);
    expect(run).toEqual({
      code: 1,
      out: [],
      err: [
        `audit-archive refused: AUDIT_ARCHIVE_FEWER_ROWS: ${sealsPath} holds ${header.monthRows + 1} rows of ${live}, the database ` +
          `${header.monthRows} now: the archive in place is kept, nothing written (move it away only to archive the month anew from what the database holds)`,
      ],
    });
    expect(pair(target, live)).toEqual(before);
  }, 180_000);

  it('keeps a seals file in place that is not one of the month', async () => {
    const target = join(trail.dir, 'live');
    const sealsPath = join(target, `audit-${live}.seals.json`);
    writeFileSync(sealsPath, 'not an archive\n');
    const before = pair(target, live);
    const run = await archive(target, live);
    expect(run).toEqual({
      code: 1,
      out: [],
      err: [
        `audit-archive refused: AUDIT_ARCHIVE_EXISTS: ${sealsPath} is in place and is not a seals file of ${live} this version reads; ` +
          'nothing written: move it and its rows file away to archive the month anew',
      ],
    });
    expect(pair(target, live)).toEqual(before);
  }, 180_000);
});
