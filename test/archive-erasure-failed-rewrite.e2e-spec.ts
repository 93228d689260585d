import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { SEALED_COLUMNS_SQL } from '../src/audit/integrity/row-encoding';
import { boundedArchiveFiles } from '../src/audit/lifecycle/archive-files';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';

// docs/LIFECYCLE.md, "What the offline check proves of an erased archive": an erasure entry that
// names an archive's month in `changes.erasure.archives` names the rows it erases there too
// (`archiveRows`, a digest of their ids), and accounts for rows of that archive under that count
// only when the rows erased under it are exactly those. So the entry of an erasure whose rewrite
// never happened accounts for no other row: neither when its authentic entry is carried into the
// archive by hand after the rewrite failed (AUDIT_ARCHIVE_LOCKED; the rerun erased the archive's
// rows under a second erasure), nor when a rewrite failed after renaming the seals file (the entry
// in the archive's own seals file, its rows file as it was). A row of another subject marked erased
// by hand under it is `row_erased_unaccounted`, and the honest archive verifies clean.
describe('the entry of an erasure whose archive rewrite failed accounts for no row in that archive', () => {
  const trail = new ArchiveErasureTrail('archive_failed_rewrite');
  const { erase, log, tampered, verifyArchive, month } = trail;

  beforeAll(async () => {
    await trail.start(async () => {
      await log(2, 1, 'u-1');
      await log(2, 2, 'u-2');
      await log(2, 3, 'u-3');
    });
  }, 180_000);

  afterAll(() => trail.stop());

  it('its authentic entry carried into the archive by hand accounts for no row of another subject marked erased under it', async () => {
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
      'archive_failed_rewrite',
    );
    expect(entries).toHaveLength(2);
    const firstEntry = Array.from({ length: 17 }, (_, i) => entries[0][`c${i}`] ?? null);
    const firstErasure = (
      JSON.parse(firstEntry[11] as string) as {
        erasure: { id: string; rows: number; archives: Record<string, number>; archiveRows: Record<string, string> };
      }
    ).erasure;
    // It erased nothing in the database (the month is retired), and names the archive it did not rewrite, and the row there.
    expect({ rows: firstErasure.rows, archives: firstErasure.archives, named: Object.keys(firstErasure.archiveRows) }).toEqual({
      rows: 0,
      archives: { [month]: 1 },
      named: [month],
    });

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

  it('the entry a failed rewrite left in the seals file accounts for no row marked by hand under it', async () => {
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
