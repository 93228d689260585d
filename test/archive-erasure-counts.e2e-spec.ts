import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { AuditSealer } from '../src/audit';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';
import { monthsAgo } from './support/past-months';

// An erased row of an archive is accounted for by an erasure entry its seals file carries, at most
// as many rows as that entry accounts for in THIS archive (docs/LIFECYCLE.md, "What the offline
// check proves of an erased archive"): a row of a subject never erased, marked erased by whoever
// holds the archive, is `row_erased_unaccounted` (with every row of that erasure, which the check
// cannot tell apart); an entry carried twice is `row_invalid` and counts once; beside entries
// carried whole, the summary accounts for nothing; an entry accounts, of the archive's rows of each
// month (by their own occurred_at, in UTC), for no more than it erased of that month in the
// database, so that an authentic entry copied from another month's archive accounts for none here.
describe('erased archive rows beyond what their erasure entries account for in the archive', () => {
  const trail = new ArchiveErasureTrail('archerasecount');
  const { month, erase, log, tampered, verifyArchive, verifySeals } = trail;

  // Erases `userId`'s row (another subject, never erased) by hand under the erasure marker `marker`.
  const eraseByHand =
    (marker: string, userId = 'u-2') =>
    (rows: (string | null)[][]) => {
      const row = rows.find((r) => r[6] === userId) as (string | null)[];
      [row[6], row[8], row[16]] = ['[ERASED]', '[ERASED]', marker];
    };
  // Exit 1, the row erased by hand named, and every anomaly one of an erased row unaccounted for (or of `also`).
  const overErased = (result: { code: number; anomalies: string[] }, row: string, also: string[] = []) => {
    expect({ code: result.code, named: result.anomalies.includes(`ANOMALY row_erased_unaccounted row ${row}`) }).toEqual({
      code: 1,
      named: true,
    });
    expect(result.anomalies.filter((a) => !a.startsWith('ANOMALY row_erased_unaccounted row '))).toEqual(also);
  };
  const idOf = (userId: string) => (trail.archiveRows(trail.archives).find((row) => row[6] === userId) as (string | null)[])[0] as string;
  const entryOf = (header: { erasureEntries: (string | null)[][] }, marker: string) => {
    const erasureId = (JSON.parse(marker) as { erased: string }).erased;
    return header.erasureEntries.find((e) => e[11]?.includes(erasureId)) as (string | null)[];
  };
  // audit-archive of the month one back into `name`, as it is now: its seals file, header and rows.
  const archiveLater = async (name: string) => {
    const later = monthsAgo(1).month;
    const target = join(trail.dir, name);
    const out: string[] = [];
    const code = await runArchive(
      ['--url', trail.url(), '--month', later, '--out', target],
      {},
      { out: (l) => out.push(l), err: (l) => out.push(l) },
    );
    expect({ code, out: out.filter((l) => /fail|error/i.test(l)) }).toEqual({ code: 0, out: [] });
    const sealsPath = join(target, `audit-${later}.seals.json`);
    const rowsPath = join(target, `audit-${later}.ndjson.gz`);
    const header = JSON.parse(readFileSync(sealsPath, 'utf8')) as { erasureEntries: (string | null)[][] };
    const rows = gunzipSync(readFileSync(rowsPath))
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as (string | null)[]);
    return { later, sealsPath, rowsPath, header, rows };
  };

  beforeAll(async () => {
    await trail.start(async () => {
      await log(2, 1, 'u-5');
      await log(2, 2, 'u-2');
      await log(2, 3, 'u-3');
      await log(2, 4, 'u-4');
    });
    // Rows written after the month was archived: in the database only.
    await log(1, 2, 'u-5');
    await log(1, 3, 'u-5');
    await log(1, 4, 'u-6');
    await trail.app.get(AuditSealer).sealNow();
  }, 180_000);

  afterAll(() => trail.stop());

  it('an entry that erased 1 row in this archive (and 2 in the database) does not account for 2 erased rows here', async () => {
    const result = await erase(['--user', 'u-5']);
    expect({ code: result.code, line: result.out.filter((l) => l.startsWith(`archive ${month}`)) }).toEqual({
      code: 0,
      line: [`archive ${month}: 1 rows erased, 0 already erased, 0 not erasable`],
    });
    const header = JSON.parse(readFileSync(trail.sealsOf(trail.archives), 'utf8')) as { erasureEntries: (string | null)[][] };
    const erasure = JSON.parse(header.erasureEntries[0][11] as string) as { erasure: { rows: number; archives: Record<string, number> } };
    expect({ rows: erasure.erasure.rows, archives: erasure.erasure.archives }).toEqual({ rows: 2, archives: { [month]: 1 } });
    const untouched = await verifyArchive(trail.archives);
    expect({ code: untouched.code, anomalies: untouched.anomalies }).toEqual({ code: 0, anomalies: [] });
    const marker = trail.archiveRows(trail.archives).find((row) => row[5] === 'nda-2-1')?.[16] as string;
    // u-2 was never erased; its row is now marked erased under u-5's erasure, which says it erased 1 row here.
    const victim = idOf('u-2');
    overErased(await verifyArchive(tampered('over-erased', { rows: eraseByHand(marker) })), victim);
  }, 120_000);

  it('an entry carried twice in erasureEntries does not account for its rows twice', async () => {
    const result = await erase(['--user', 'u-3']);
    expect({ code: result.code, line: result.out.filter((l) => l.startsWith(`archive ${month}`)) }).toEqual({
      code: 0,
      line: [`archive ${month}: 1 rows erased, 0 already erased, 0 not erasable`],
    });
    const marker = trail.archiveRows(trail.archives).find((row) => row[5] === 'nda-2-3')?.[16] as string;
    const erasureId = (JSON.parse(marker) as { erased: string }).erased;
    const header = JSON.parse(readFileSync(trail.sealsOf(trail.archives), 'utf8')) as { erasureEntries: (string | null)[][] };
    const entry = header.erasureEntries.find((e) => e[11]?.includes(erasureId)) as (string | null)[];
    expect(JSON.parse(entry[11] as string)).toEqual({ erasure: expect.objectContaining({ rows: 0, archives: { [month]: 1 } }) as unknown });
    const victim = idOf('u-4');
    const doubled = tampered('doubled', {
      rows: eraseByHand(marker, 'u-4'),
      seals: (h) => void (h.erasureEntries as (string | null)[][]).push(entry),
    });
    overErased(await verifyArchive(doubled), victim, [`ANOMALY row_invalid row ${entry[0] as string}`]);
  }, 120_000);

  it('in an archive that carries its erasure entries whole, an erasure listed in the summary only does not account for rows', async () => {
    const fake = randomUUID();
    const victim = idOf('u-4');
    const summaryOnly = tampered('summary-only', {
      rows: eraseByHand(`{"erased":"${fake}"}`, 'u-4'),
      seals: (h) => void (h.erasures as unknown[]).push({ entry: randomUUID(), erasure: fake, rows: 1 }),
    });
    const header = JSON.parse(readFileSync(trail.sealsOf(summaryOnly), 'utf8')) as { erasureEntries: unknown[] };
    expect(header.erasureEntries.length).toBeGreaterThan(0);
    overErased(await verifyArchive(summaryOnly), victim);
  }, 120_000);

  it("an entry of an erasure that erased nothing in this archive, copied from another month's archive, accounts for no row here", async () => {
    const result = await erase(['--user', 'u-6']);
    expect({ code: result.code, line: result.out.filter((l) => l.startsWith(`archive ${month}`)) }).toEqual({ code: 0, line: [] });
    await trail.app.get(AuditSealer).sealNow();
    const { later, sealsPath, header, rows } = await archiveLater('later');
    const marker = rows.find((row) => row[5] === 'nda-1-4')?.[16] as string;
    const entry = entryOf(header, marker);
    // The entry, authentic, says what its database erasure erased of each month: 1 row of the later month, none of this one.
    expect(JSON.parse(entry[11] as string)).toEqual({ erasure: expect.objectContaining({ rows: 1, months: { [later]: 1 } }) as unknown });
    // The later month's archive, which holds that erased row, verifies clean with it.
    const laterChecked = await verifySeals(sealsPath);
    expect({ code: laterChecked.code, anomalies: laterChecked.anomalies }).toEqual({ code: 0, anomalies: [] });
    const victim = idOf('u-2');
    const copied = tampered('copied', {
      rows: eraseByHand(marker),
      seals: (h) => void (h.erasureEntries as (string | null)[][]).push(entry),
    });
    overErased(await verifyArchive(copied), victim);
  }, 120_000);

  it("accounts for a neighbouring month's edge rows by their own month, never beyond what the entry erased of each month", async () => {
    const current = monthsAgo(0).month;
    // One seal holds rows of two months: the later month's archive carries this month's row as an edge.
    await log(1, 6, 'u-7');
    await log(0, 1, 'u-7');
    await log(1, 7, 'u-8');
    await trail.app.get(AuditSealer).sealNow();
    // And a row of this month in a seal of its own, not in the later month's archive.
    await log(0, 2, 'u-7');
    await trail.app.get(AuditSealer).sealNow();
    // A session whose time zone puts the first hours of a month in the month before: months are counted in UTC all the same.
    const result = await erase(['--user', 'u-7'], { url: `${trail.url()}?options=${encodeURIComponent('-c TimeZone=Pacific/Honolulu')}` });
    expect({ code: result.code, erased: result.out.filter((l) => l.startsWith('audit-erase: 3 rows erased')).length }).toEqual({
      code: 0,
      erased: 1,
    });
    await trail.app.get(AuditSealer).sealNow();
    const { later, sealsPath, rowsPath, header, rows } = await archiveLater('later-edges');
    const marker = rows.find((row) => row[5] === 'nda-1-6')?.[16] as string;
    expect(rows.filter((row) => row[16] === marker).map((row) => row[5])).toEqual(['nda-1-6', 'nda-0-1']);
    expect(JSON.parse(entryOf(header, marker)[11] as string)).toEqual({
      erasure: expect.objectContaining({ rows: 3, months: { [later]: 1, [current]: 2 } }) as unknown,
    });
    const clean = await verifySeals(sealsPath);
    expect({ code: clean.code, anomalies: clean.anomalies }).toEqual({ code: 0, anomalies: [] });
    // u-8 was never erased; its row of the later month, marked under u-7's erasure, is one more of that month than the entry
    // erased (though no more than the entry's 3 rows, nor than its 1 + 2 of the two months the file holds).
    const victim = rows.find((row) => row[6] === 'u-8') as (string | null)[];
    [victim[6], victim[8], victim[16]] = ['[ERASED]', '[ERASED]', marker];
    writeFileSync(rowsPath, gzipSync(rows.map((row) => `${JSON.stringify(row)}\n`).join('')));
    overErased(await verifySeals(sealsPath), victim[0] as string);
  }, 120_000);
});
