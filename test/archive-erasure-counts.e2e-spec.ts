import { type INestApplication } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { runErase } from '../src/audit/privacy/erase-command';
import { sealingKeys, verify, witnessText } from './support/integrity';
import { monthsAgo } from './support/past-months';
import { type TestPostgres } from './support/postgres';
import { startArchiveTrail, stopArchiveTrail } from './support/archive-trail';
import { type StderrCapture } from './support/stderr';

// An erased row of an archive is accounted for by an erasure entry its seals file carries, at most
// as many rows as that entry accounts for in THIS archive (docs/LIFECYCLE.md, "What the offline
// check proves of an erased archive"): a row of a subject never erased, marked erased by whoever
// holds the archive, is `row_erased_unaccounted` (with every row of that erasure, which the check
// cannot tell apart); an entry carried twice is `row_invalid` and counts once; beside entries
// carried whole, the summary accounts for nothing; an entry accounts, of the archive's rows of each
// month (by their own occurred_at, in UTC), for no more than it erased of that month in the
// database, so that an authentic entry copied from another month's archive accounts for none here.
describe('erased archive rows beyond what their erasure entries account for in the archive', () => {
  const database = 'archerasecount';
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  const month = monthsAgo(2).month;
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  let archives: string;
  const retainedLines: string[] = [];

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
  const witness = () => {
    const path = join(dir, 'witness.log');
    writeFileSync(path, witnessText(stderr) + retainedLines.map((line) => `${line}\n`).join(''));
    return path;
  };
  const sealsOf = (where: string) => join(where, `audit-${month}.seals.json`);
  const rowsOf = (where: string) => join(where, `audit-${month}.ndjson.gz`);
  const verifyArchive = (where: string) =>
    verify('', '--archive', sealsOf(where), '--witness', witness(), '--public-key', join(dir, 'seal.pub'), '--entry-key', entryKey);
  const erase = async (args: string[], url = db.url(database)) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runErase(
      ['--url', url, '--by', 'dpo', '--archive-dir', archives, ...args],
      { AUDIT_INTEGRITY_ENTRY_KEY: entryKey },
      { out: (l) => out.push(l), err: (l) => err.push(l) },
    );
    return { code, out, err };
  };
  const archiveRows = (where: string) =>
    gunzipSync(readFileSync(rowsOf(where)))
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as (string | null)[]);
  const tampered = (name: string, change: { rows?: (rows: (string | null)[][]) => void; seals?: (h: Record<string, unknown>) => void }) => {
    const target = join(dir, name);
    cpSync(archives, target, { recursive: true });
    if (change.rows) {
      const rows = archiveRows(target);
      change.rows(rows);
      writeFileSync(rowsOf(target), gzipSync(rows.map((row) => `${JSON.stringify(row)}\n`).join('')));
    }
    if (change.seals) {
      const header = JSON.parse(readFileSync(sealsOf(target), 'utf8')) as Record<string, unknown>;
      change.seals(header);
      writeFileSync(sealsOf(target), JSON.stringify(header));
    }
    return target;
  };
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
  const idOf = (userId: string) => (archiveRows(archives).find((row) => row[6] === userId) as (string | null)[])[0] as string;

  beforeAll(async () => {
    ({ dir, db, app, stderr } = await startArchiveTrail(database, 3, keys, entryKey));
    archives = join(dir, 'archives');
    await log(2, 1, 'u-5');
    await log(2, 2, 'u-2');
    await log(2, 3, 'u-3');
    await log(2, 4, 'u-4');
    await app.get(AuditSealer).sealNow();
    const out: string[] = [];
    const code = await runRetention(
      ['--url', db.url(database), '--signing-key', join(dir, 'seal.key'), '--months', '1', '--archive-dir', archives],
      {},
      {
        out: (line) => out.push(line),
        err: (line) => (line.includes(`"event":"${AUDIT_EVENTS.retained}"`) ? retainedLines.push(line) : out.push(line)),
      },
    );
    expect({ code, retired: out.filter((l) => l.startsWith(`RETIRED ${month}`)).length }).toEqual({ code: 0, retired: 1 });
    // Rows written after the month was archived: in the database only.
    await log(1, 2, 'u-5');
    await log(1, 3, 'u-5');
    await log(1, 4, 'u-6');
    await app.get(AuditSealer).sealNow();
  }, 180_000);

  afterAll(() => stopArchiveTrail({ app, db, stderr, dir }));

  it('an entry that erased 1 row in this archive (and 2 in the database) does not account for 2 erased rows here', async () => {
    const result = await erase(['--user', 'u-5']);
    expect({ code: result.code, line: result.out.filter((l) => l.startsWith(`archive ${month}`)) }).toEqual({
      code: 0,
      line: [`archive ${month}: 1 rows erased, 0 already erased, 0 not erasable`],
    });
    const header = JSON.parse(readFileSync(sealsOf(archives), 'utf8')) as { erasureEntries: (string | null)[][] };
    const erasure = JSON.parse(header.erasureEntries[0][11] as string) as { erasure: { rows: number; archives: Record<string, number> } };
    expect({ rows: erasure.erasure.rows, archives: erasure.erasure.archives }).toEqual({ rows: 2, archives: { [month]: 1 } });
    const untouched = await verifyArchive(archives);
    expect({ code: untouched.code, anomalies: untouched.anomalies }).toEqual({ code: 0, anomalies: [] });
    const marker = archiveRows(archives).find((row) => row[5] === 'nda-2-1')?.[16] as string;
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
    const marker = archiveRows(archives).find((row) => row[5] === 'nda-2-3')?.[16] as string;
    const erasureId = (JSON.parse(marker) as { erased: string }).erased;
    const header = JSON.parse(readFileSync(sealsOf(archives), 'utf8')) as { erasureEntries: (string | null)[][] };
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
    const header = JSON.parse(readFileSync(sealsOf(summaryOnly), 'utf8')) as { erasureEntries: unknown[] };
    expect(header.erasureEntries.length).toBeGreaterThan(0);
    overErased(await verifyArchive(summaryOnly), victim);
  }, 120_000);

  it("an entry of an erasure that erased nothing in this archive, copied from another month's archive, accounts for no row here", async () => {
    const result = await erase(['--user', 'u-6']);
    expect({ code: result.code, line: result.out.filter((l) => l.startsWith(`archive ${month}`)) }).toEqual({ code: 0, line: [] });
    await app.get(AuditSealer).sealNow();
    const later = monthsAgo(1).month;
    const target = join(dir, 'later');
    const out: string[] = [];
    const code = await runArchive(
      ['--url', db.url(database), '--month', later, '--out', target],
      {},
      { out: (l) => out.push(l), err: (l) => out.push(l) },
    );
    expect(code).toBe(0);
    const laterHeader = JSON.parse(readFileSync(join(target, `audit-${later}.seals.json`), 'utf8')) as {
      erasureEntries: (string | null)[][];
    };
    const laterRows = gunzipSync(readFileSync(join(target, `audit-${later}.ndjson.gz`)))
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as (string | null)[]);
    const marker = laterRows.find((row) => row[5] === 'nda-1-4')?.[16] as string;
    const erasureId = (JSON.parse(marker) as { erased: string }).erased;
    const entry = laterHeader.erasureEntries.find((e) => e[11]?.includes(erasureId)) as (string | null)[];
    // The entry, authentic, says what its database erasure erased of each month: 1 row of the later month, none of this one.
    expect(JSON.parse(entry[11] as string)).toEqual({ erasure: expect.objectContaining({ rows: 1, months: { [later]: 1 } }) as unknown });
    // The later month's archive, which holds that erased row, verifies clean with it.
    const laterChecked = await verify(
      '',
      '--archive',
      join(target, `audit-${later}.seals.json`),
      '--witness',
      witness(),
      '--public-key',
      join(dir, 'seal.pub'),
      '--entry-key',
      entryKey,
    );
    expect({ code: laterChecked.code, anomalies: laterChecked.anomalies }).toEqual({ code: 0, anomalies: [] });
    const victim = idOf('u-2');
    const copied = tampered('copied', {
      rows: eraseByHand(marker),
      seals: (header) => void (header.erasureEntries as (string | null)[][]).push(entry),
    });
    overErased(await verifyArchive(copied), victim);
  }, 120_000);

  it("accounts for a neighbouring month's edge rows by their own month, never beyond what the entry erased of each month", async () => {
    const later = monthsAgo(1).month;
    const current = monthsAgo(0).month;
    // One seal holds rows of two months: the later month's archive carries this month's row as an edge.
    await log(1, 6, 'u-7');
    await log(0, 1, 'u-7');
    await log(1, 7, 'u-8');
    await app.get(AuditSealer).sealNow();
    // And a row of this month in a seal of its own, not in the later month's archive.
    await log(0, 2, 'u-7');
    await app.get(AuditSealer).sealNow();
    // A session whose time zone puts the first hours of a month in the month before: months are counted in UTC all the same.
    const result = await erase(['--user', 'u-7'], `${db.url(database)}?options=${encodeURIComponent('-c TimeZone=Pacific/Honolulu')}`);
    expect({ code: result.code, erased: result.out.filter((l) => l.startsWith('audit-erase: 3 rows erased')).length }).toEqual({
      code: 0,
      erased: 1,
    });
    await app.get(AuditSealer).sealNow();
    const target = join(dir, 'later-edges');
    const out: string[] = [];
    const code = await runArchive(
      ['--url', db.url(database), '--month', later, '--out', target],
      {},
      { out: (l) => out.push(l), err: (l) => out.push(l) },
    );
    expect(code).toBe(0);
    const sealsPath = join(target, `audit-${later}.seals.json`);
    const rowsPath = join(target, `audit-${later}.ndjson.gz`);
    const rows = gunzipSync(readFileSync(rowsPath))
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as (string | null)[]);
    const marker = rows.find((row) => row[5] === 'nda-1-6')?.[16] as string;
    expect(rows.filter((row) => row[16] === marker).map((row) => row[5])).toEqual(['nda-1-6', 'nda-0-1']);
    const erasureId = (JSON.parse(marker) as { erased: string }).erased;
    const header = JSON.parse(readFileSync(sealsPath, 'utf8')) as { erasureEntries: (string | null)[][] };
    const entry = header.erasureEntries.find((e) => e[11]?.includes(erasureId)) as (string | null)[];
    expect(JSON.parse(entry[11] as string)).toEqual({
      erasure: expect.objectContaining({ rows: 3, months: { [later]: 1, [current]: 2 } }) as unknown,
    });
    const check = (path: string) =>
      verify('', '--archive', path, '--witness', witness(), '--public-key', join(dir, 'seal.pub'), '--entry-key', entryKey);
    const clean = await check(sealsPath);
    expect({ code: clean.code, anomalies: clean.anomalies }).toEqual({ code: 0, anomalies: [] });
    // u-8 was never erased; its row of the later month, marked under u-7's erasure, is one more of that month than the entry
    // erased (though no more than the entry's 3 rows, nor than its 1 + 2 of the two months the file holds).
    const victim = rows.find((row) => row[6] === 'u-8') as (string | null)[];
    [victim[6], victim[8], victim[16]] = ['[ERASED]', '[ERASED]', marker];
    writeFileSync(rowsPath, gzipSync(rows.map((row) => `${JSON.stringify(row)}\n`).join('')));
    overErased(await check(sealsPath), victim[0] as string);
  }, 120_000);
});
