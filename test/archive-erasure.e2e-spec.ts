import { randomUUID } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditSealer } from '../src/audit';
import { type ArchiveFiles, boundedArchiveFiles } from '../src/audit/lifecycle/archive-files';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';
import { verify } from './support/integrity';
import { monthsAgo, partitionAgo } from './support/past-months';

// Erasure inside archives (issue 22, "in every month including archives"): a user whose rows are
// in a removed month's archive and in the database is erased by `audit-erase --archive-dir`; the
// archive is rewritten with those rows erased as the database erases them, the erasure entry
// counts them and travels whole in the seals file, and both the archive and the database verify
// clean. A dry run writes nothing, a second run changes nothing, an erasure by entity takes the
// rows whose changes name it, tampering with an erased archive is named, and a disk failure
// mid-rewrite leaves the old pair verifying.
describe('erasure inside archives (audit-erase --archive-dir)', () => {
  const trail = new ArchiveErasureTrail('archerase');
  const { month, entryKey, erase, log, rowsOf, sealsOf, rowsText, archiveRows, tampered, verifyArchive, verifySeals } = trail;

  const sql = (text: string, parameters: unknown[] = []) => trail.db.query(text, parameters, 'archerase');
  const verifyDatabase = async () => {
    await trail.app.get(AuditSealer).sealNow();
    return verify(trail.url(), '--witness', trail.witness(), '--public-key', join(trail.dir, 'seal.pub'), '--entry-key', entryKey);
  };
  const bytes = (where: string) => ({ rows: readFileSync(rowsOf(where)), seals: readFileSync(sealsOf(where)) });
  const summary = (r: { code: number; anomalies: string[]; out: string[] }) => ({
    code: r.code,
    anomalies: r.anomalies,
    result: r.out.filter((l) => l.startsWith('result:')),
  });
  const clean = { code: 0, anomalies: [], result: ['result: CLEAN'] };

  beforeAll(async () => {
    await trail.start(async () => {
      await log(2, 1, 'u-1');
      await log(2, 2, 'u-2');
      await log(2, 3, 'u-1');
      await log(2, 4, 'u-3', { entityType: 'Customer', entityId: '7' });
      // A row about another entity whose change names Customer 7 (by a numeric id, as TypeORM keys it).
      await log(2, 5, 'u-4', { changes: { entities: [{ type: 'Customer', id: 7, op: 'update', fields: { name: ['a', 'b'] } }] } });
      await log(1, 1, 'u-1');
    });
    expect(await sql(`SELECT to_regclass($1) IS NOT NULL AS present`, [partitionAgo(2)])).toEqual([{ present: false }]);
    cpSync(trail.archives, join(trail.dir, 'before'), { recursive: true });
  }, 180_000);

  afterAll(() => trail.stop());

  it('a dry run lists what would change in each archive and writes nothing', async () => {
    const before = bytes(trail.archives);
    const entries = await sql(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'audit_erasure'`);
    const result = await erase(['--user', 'u-1', '--dry-run']);
    // Three rows: the seal that holds the month's rows also holds month -1's row, which the archive carries too.
    expect(result.out.filter((l) => l.includes('archive'))).toEqual([
      ...Array.from({ length: 3 }, () => expect.stringMatching(new RegExp(`^would erase [0-9a-f-]{36} in archive ${month}$`)) as unknown),
      `archive ${month}: 3 rows would be erased, 0 already erased, 0 not erasable`,
      `audit-erase: archives in ${trail.archives}: 3 rows would be erased in 1 archives of 2; dry run: nothing changed`,
    ]);
    expect(result.code).toBe(0);
    expect(bytes(trail.archives)).toEqual(before);
    expect(readdirSync(trail.archives).sort()).toEqual(readdirSync(join(trail.dir, 'before')).sort());
    expect(await sql(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'audit_erasure'`)).toEqual(entries);
  }, 60_000);

  it("erases a user in the database and in the removed month's archive; both verify clean, the archive counting its erased rows", async () => {
    const result = await erase(['--user', 'u-1']);
    expect({ code: result.code, err: result.err }).toEqual({ code: 0, err: [] });
    expect(result.out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^audit-erase: 1 rows erased, 0 already erased, 0 not erasable/),
        `archive ${month}: 3 rows erased, 0 already erased, 0 not erasable`,
        `audit-erase: archives in ${trail.archives}: 3 rows erased in 1 archives of 2`,
      ]),
    );
    const erased = archiveRows(trail.archives).filter((row) => row[16]?.startsWith('{"erased":'));
    expect(erased.map((row) => [row[5], row[6], row[8], row[9]])).toEqual([
      ['nda-2-1', '[ERASED]', '[ERASED]', null],
      ['nda-2-3', '[ERASED]', '[ERASED]', null],
      ['nda-1-1', '[ERASED]', '[ERASED]', null],
    ]);
    expect(new Set(erased.map((row) => row[16])).size).toBe(1);
    // Nothing else changed: every other row's line is the one archived.
    const old = rowsText(join(trail.dir, 'before')).trimEnd().split('\n');
    const now = rowsText(trail.archives).trimEnd().split('\n');
    expect(now.filter((line, i) => line !== old[i])).toHaveLength(3);
    expect((statSync(rowsOf(trail.archives)).mode & 0o777).toString(8)).toBe('600');
    expect((statSync(sealsOf(trail.archives)).mode & 0o777).toString(8)).toBe('600');
    const offline = await verifyArchive(trail.archives);
    expect(summary(offline)).toEqual(clean);
    expect(offline.out).toContain('erasure: 3 rows erased under 1 erasure entries');
    expect(summary(await verifyDatabase())).toEqual(clean);
  }, 90_000);

  it('leaves none of the erased user ids in the rewritten archive: a dictionary of ids finds only those not erased', async () => {
    const text = rowsText(trail.archives) + readFileSync(sealsOf(trail.archives), 'utf8');
    const dictionary = Array.from({ length: 10 }, (_, i) => `u-${i}`);
    expect(dictionary.filter((id) => text.includes(`"${id}"`))).toEqual(['u-2', 'u-3', 'u-4']);
    expect(dictionary.filter((id) => rowsText(join(trail.dir, 'before')).includes(`"${id}"`))).toEqual(['u-1', 'u-2', 'u-3', 'u-4']);
  });

  it('erasing the same user again changes nothing in the archive', async () => {
    const before = bytes(trail.archives);
    const result = await erase(['--user', 'u-1']);
    expect(result.code).toBe(0);
    // As in the table, an erased row no longer holds the user id that found it.
    expect(result.out.filter((l) => l.includes('archive'))).toEqual([
      `audit-erase: archives in ${trail.archives}: 0 rows erased in 0 archives of 2`,
    ]);
    expect(bytes(trail.archives)).toEqual(before);
    expect(summary(await verifyArchive(trail.archives))).toEqual(clean);
  }, 60_000);

  it('an erasure by entity takes its rows and the rows whose changes name it, actor included, as the database does', async () => {
    const result = await erase(['--entity', 'Customer', '--entity-id', '7']);
    expect({ code: result.code, line: result.out.filter((l) => l.startsWith(`archive ${month}`)) }).toEqual({
      code: 0,
      line: [`archive ${month}: 2 rows erased, 0 already erased, 0 not erasable`],
    });
    const rows = archiveRows(trail.archives);
    expect(rows.filter((row) => row[6] === '[ERASED]').map((row) => row[5])).toEqual(['nda-2-1', 'nda-2-3', '7', 'nda-2-5', 'nda-1-1']);
    const offline = await verifyArchive(trail.archives);
    expect(summary(offline)).toEqual(clean);
    expect(offline.out).toContain('erasure: 5 rows erased under 2 erasure entries');
    expect(summary(await verifyDatabase())).toEqual(clean);
  }, 90_000);

  it('names an erased archive changed by hand: a value changed instead of erased, a row erased without an entry, an entry changed', async () => {
    const erasedRow = (rows: (string | null)[][]) => rows.find((row) => row[16]?.startsWith('{"erased":')) as (string | null)[];
    const keptRow = (rows: (string | null)[][]) => rows.find((row) => row[6] === 'u-2') as (string | null)[];
    const cases: [string, Parameters<typeof tampered>[1], string[]][] = [
      ['changed-erased', { rows: (rows) => void (erasedRow(rows)[6] = 'u-1') }, ['ANOMALY row_personal_changed']],
      ['changed-kept', { rows: (rows) => void (keptRow(rows)[6] = 'u-9') }, ['ANOMALY row_personal_changed']],
      [
        'erased-without-entry',
        {
          rows: (rows) => {
            const row = keptRow(rows);
            [row[6], row[8], row[16]] = ['[ERASED]', '[ERASED]', `{"erased":"${randomUUID()}"}`];
          },
        },
        ['ANOMALY row_erased_unaccounted'],
      ],
      [
        'erased-under-real-erasure',
        {
          rows: (rows) => {
            const row = keptRow(rows);
            [row[6], row[8], row[16]] = ['[ERASED]', '[ERASED]', erasedRow(rows)[16]];
          },
        },
        Array.from({ length: 4 }, () => 'ANOMALY row_erased_unaccounted'),
      ],
      [
        'entry-count-raised',
        {
          seals: (header) => {
            const entry = (header.erasureEntries as (string | null)[][])[0];
            entry[11] = (entry[11] as string).replace(/"archives": \{"([^"]+)": 3\}/, '"archives": {"$1": 4}');
          },
        },
        ['ANOMALY row_forged', ...Array.from({ length: 3 }, () => 'ANOMALY row_erased_unaccounted')],
      ],
    ];
    for (const [name, change, expected] of cases) {
      const result = await verifyArchive(tampered(name, change));
      expect({ name, code: result.code, anomalies: result.anomalies }).toEqual({
        name,
        code: 1,
        anomalies: expected.map((kind) => expect.stringMatching(new RegExp(`^${kind} row `)) as unknown),
      });
    }
  }, 120_000);

  it('audit-archive carries the erasure entries whole too: an entry count changed by hand there is named with the entry key', async () => {
    await trail.app.get(AuditSealer).sealNow();
    const later = monthsAgo(1).month;
    const target = join(trail.dir, 'later');
    const out: string[] = [];
    const code = await runArchive(
      ['--url', trail.url(), '--month', later, '--out', target],
      {},
      { out: (l) => out.push(l), err: (l) => out.push(l) },
    );
    expect({ code, last: out.at(-1) }).toEqual({ code: 0, last: expect.stringMatching(/archived; check it with/) });
    const sealsPath = join(target, `audit-${later}.seals.json`);
    const header = JSON.parse(readFileSync(sealsPath, 'utf8')) as { erasureEntries: (string | null)[][]; erasures: { entry: string }[] };
    expect(header.erasureEntries.map((entry) => [entry[0], entry[3]])).toEqual(header.erasures.map((e) => [e.entry, 'audit_erasure']));
    const check = () => verifySeals(sealsPath);
    expect(summary(await check())).toEqual(clean);
    const entry = header.erasureEntries[0];
    entry[11] = (entry[11] as string).replace(/"rows": 1\b/, '"rows": 5');
    writeFileSync(sealsPath, JSON.stringify(header));
    const changed = await check();
    expect({ code: changed.code, anomalies: changed.anomalies }).toEqual({
      code: 1,
      anomalies: [
        expect.stringMatching(new RegExp(`^ANOMALY row_forged row ${entry[0]}$`)),
        expect.stringMatching(/^ANOMALY row_erased_unaccounted row /),
      ],
    });
  }, 90_000);

  it('a disk that fails mid-rewrite leaves the old pair verifying; erasing again then takes the rows', async () => {
    const before = bytes(trail.archives);
    let writes = 0;
    const failing = (d: string, ms: number): ArchiveFiles => {
      const files = boundedArchiveFiles(d, ms);
      return {
        ...files,
        create: async (path) => {
          const file = await files.create(path);
          return {
            write: async (chunk) => {
              writes += chunk.length;
              throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
            },
            sync: () => file.sync(),
            close: () => file.close(),
          };
        },
      };
    };
    const failed = await erase(['--user', 'u-2'], { files: failing });
    expect({ code: failed.code, err: failed.err }).toEqual({
      code: 1,
      err: [expect.stringMatching(new RegExp(`^archive ${month}: FAILED ENOSPC: no space left on device; its rows file is as it was`))],
    });
    expect({ writes: writes > 0, files: bytes(trail.archives) }).toEqual({ writes: true, files: before });
    expect(readdirSync(trail.archives).filter((name) => name.endsWith('.partial'))).toEqual([]);
    expect(summary(await verifyArchive(trail.archives))).toEqual(clean);
    expect(rowsText(trail.archives)).toContain('"u-2"');
    // Failing at the last step: the seals file (with the new entry) is in place, the old rows file too.
    const lastRename = (d: string, ms: number): ArchiveFiles => {
      const files = boundedArchiveFiles(d, ms);
      return {
        ...files,
        rename: async (from, to) => {
          if (to.endsWith('.ndjson.gz')) throw Object.assign(new Error('input/output error'), { code: 'EIO' });
          await files.rename(from, to);
        },
      };
    };
    const cut = await erase(['--user', 'u-2'], { files: lastRename });
    expect({ code: cut.code, err: cut.err }).toEqual({
      code: 1,
      err: [expect.stringMatching(new RegExp(`^archive ${month}: FAILED EIO: input/output error; its rows file is as it was`))],
    });
    expect(readFileSync(rowsOf(trail.archives))).toEqual(before.rows);
    expect(readdirSync(trail.archives).filter((name) => name.endsWith('.partial'))).toEqual([]);
    expect(summary(await verifyArchive(trail.archives))).toEqual(clean);
    const again = await erase(['--user', 'u-2']);
    expect({ code: again.code, line: again.out.filter((l) => l.startsWith(`archive ${month}`)) }).toEqual({
      code: 0,
      line: [`archive ${month}: 1 rows erased, 0 already erased, 0 not erasable`],
    });
    expect(rowsText(trail.archives)).not.toContain('"u-2"');
    expect(summary(await verifyArchive(trail.archives))).toEqual(clean);
    expect(summary(await verifyDatabase())).toEqual(clean);
  }, 120_000);
});
