import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { SEALED_COLUMNS_SQL } from '../src/audit/integrity/row-encoding';
import { boundedArchiveFiles } from '../src/audit/lifecycle/archive-files';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';

// Promise (docs/LIFECYCLE.md, "What the offline check proves of an erased archive"): "An entry whose
// `changes.erasure.archives` names the archive's month (written by `audit-erase --archive-dir`,
// which rewrote every row of the subject in that file) accounts for up to that many rows here";
// rows "marked with a real erasure's id beyond its count" are `row_erased_unaccounted`.
//
// Break: the entry's `archives` is the count read before the database erasure, written whether or
// not the rewrite then happens. When the rewrite fails (here the archive's lock is held by another
// run: `FAILED AUDIT_ARCHIVE_LOCKED`, exit 1; the docs' remedy is to run the same erasure again,
// which erases the archive's rows under a second erasure), the first erasure's authentic entry says
// `archives: {"<month>": 1}` of an archive it never touched. Carried into that archive's seals file
// (copied from the database, or from the archive of the month that holds it), it accounts for one
// row there: a row of another subject, marked erased by hand under the first erasure's id, verifies
// clean with the entry key. This is not the documented room of per-month counts: the entry's
// erasure erased no row at all in the database or in any archive.
//
// The second case needs no copying: the rewrite renames the seals file (the entry added) before
// the rows file, so a rewrite whose rows rename fails (or that is killed there) leaves the first
// erasure's entry in the archive's own seals file with `archives: {"<month>": 1}` and no row erased
// under it; after the documented rerun, a row of another subject marked by hand under it verifies
// clean, the seals file untouched by hand.
//
// Observed: audit-verify --archive of the tampered copy exits 0 with no anomaly, in both cases.
//
// Severity: medium (a personal value removed by hand, not by an erasure, passes the offline check;
// needs a failed rewrite, file access and the entry's row).
// Fix guess: an entry's `archives` count is only trusted for rows its erasure erased in the
// database (`rows`/`months`), or audit-erase records the archives it rewrote in a second entry
// made after the rewrite; the offline check then never lets an entry account for more rows than its
// database erasure erased plus what a rewrite entry confirms.
describe('probe: the entry of an erasure whose archive rewrite failed', () => {
  const trail = new ArchiveErasureTrail('probe_failed_rewrite');
  const { erase, log, tampered, verifyArchive, month } = trail;

  beforeAll(async () => {
    await trail.start(async () => {
      await log(2, 1, 'u-1');
      await log(2, 2, 'u-2');
      await log(2, 3, 'u-3');
    });
  }, 180_000);

  afterAll(() => trail.stop());

  it('accounts for no row of another subject marked erased by hand under it', async () => {
    const lock = `${trail.sealsOf(trail.archives)}.lock`;
    writeFileSync(
      lock,
      `${JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString(), command: 'audit-erase' })}\n`,
    );
    const first = await erase(['--user', 'u-1']);
    rmSync(lock);
    expect({ code: first.code, err: first.err }).toEqual({
      code: 1,
      err: [expect.stringMatching(new RegExp(`^archive ${month}: FAILED AUDIT_ARCHIVE_LOCKED: `))],
    });
    const again = await erase(['--user', 'u-1']);
    expect(again.code).toBe(0);
    const honest = await verifyArchive(trail.archives);
    expect({ code: honest.code, anomalies: honest.anomalies }).toEqual({ code: 0, anomalies: [] });

    // The first erasure's entry, as an archive carries it (its 17 fields).
    const entries = await trail.db.query<Record<string, string | null>>(
      `SELECT ${SEALED_COLUMNS_SQL}, l.auth_code AS c15, l.personal AS c16 FROM public.audit_log AS l
       WHERE l.action = 'audit_erasure' ORDER BY l.tx, l.id`,
      [],
      'probe_failed_rewrite',
    );
    expect(entries).toHaveLength(2);
    const firstEntry = Array.from({ length: 17 }, (_, i) => entries[0][`c${i}`] ?? null);
    const firstErasure = (
      JSON.parse(firstEntry[11] as string) as { erasure: { id: string; rows: number; archives: Record<string, number> } }
    ).erasure;
    // It erased nothing in the database (the month is retired), and names the archive it did not rewrite.
    expect({ rows: firstErasure.rows, archives: firstErasure.archives }).toEqual({ rows: 0, archives: { [month]: 1 } });

    const victim = trail.archiveRows(trail.archives).find((r) => r[6] === 'u-2') as (string | null)[];
    const where = tampered('forged', {
      rows: (rows) => {
        const row = rows.find((r) => r[6] === 'u-2') as (string | null)[];
        for (const i of [6, 8, 9]) if (row[i] !== null) row[i] = '[ERASED]';
        row[16] = JSON.stringify({ erased: firstErasure.id });
      },
      seals: (h) => {
        (h.erasureEntries as (string | null)[][]).push(firstEntry);
        (h.erasures as unknown[]).push({ entry: firstEntry[0], erasure: firstErasure.id, rows: 1 });
      },
    });
    const checked = await verifyArchive(where);
    expect({
      code: checked.code,
      victimUnaccounted: checked.anomalies.some((a) => a.includes('row_erased_unaccounted') && a.includes(victim[0] as string)),
    }).toEqual({ code: 1, victimUnaccounted: true });
  }, 180_000);

  it('accounts for no row marked by hand under the entry a failed rewrite left in the seals file', async () => {
    const failing = (dir: string, timeoutMs: number) => {
      const files = boundedArchiveFiles(dir, timeoutMs);
      return {
        ...files,
        rename: async (from: string, to: string) => {
          if (to.endsWith('.ndjson.gz')) throw Object.assign(new Error(`EIO: i/o error, rename '${from}' -> '${to}'`), { code: 'EIO' });
          return files.rename(from, to);
        },
      };
    };
    const first = await erase(['--user', 'u-3'], { files: failing });
    expect({ code: first.code, err: first.err }).toEqual({
      code: 1,
      err: [expect.stringMatching(new RegExp(`^archive ${month}: FAILED EIO: `))],
    });
    const again = await erase(['--user', 'u-3']);
    expect(again.code).toBe(0);
    const honest = await verifyArchive(trail.archives);
    expect({ code: honest.code, anomalies: honest.anomalies }).toEqual({ code: 0, anomalies: [] });
    const header = JSON.parse(readFileSync(trail.sealsOf(trail.archives), 'utf8')) as { erasureEntries: (string | null)[][] };
    const erasureIds = header.erasureEntries.map((e) => (JSON.parse(e[11] as string) as { erasure: { id: string } }).erasure.id);
    const erasedUnder = new Set(trail.archiveRows(trail.archives).map((r) => r[16]));
    // An entry the seals file carries with no row of the archive erased under it.
    const idle = erasureIds.filter((id) => !erasedUnder.has(JSON.stringify({ erased: id })));
    expect(idle).toHaveLength(1);
    const victim = trail.archiveRows(trail.archives).find((r) => r[6] === 'u-2') as (string | null)[];
    const where = tampered('forged-in-place', {
      rows: (rows) => {
        const row = rows.find((r) => r[6] === 'u-2') as (string | null)[];
        for (const i of [6, 8, 9]) if (row[i] !== null) row[i] = '[ERASED]';
        row[16] = JSON.stringify({ erased: idle[0] });
      },
    });
    const checked = await verifyArchive(where);
    expect({
      code: checked.code,
      victimUnaccounted: checked.anomalies.some((a) => a.includes('row_erased_unaccounted') && a.includes(victim[0] as string)),
    }).toEqual({ code: 1, victimUnaccounted: true });
  }, 180_000);
});
