import { type INestApplication } from '@nestjs/common';
import { createPrivateKey, randomBytes, randomUUID } from 'node:crypto';
import { cpSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Client } from 'pg';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { archiveBeforeRetire } from '../src/audit/lifecycle/archive-retention';
import { applyRetention } from '../src/audit/lifecycle/retention';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { eventually } from './support/app';
import { sealingKeys, verify, witnessText } from './support/integrity';
import { monthsAgo, partitionAgo } from './support/past-months';
import { type TestPostgres } from './support/postgres';
import { startArchiveTrail, stopArchiveTrail } from './support/archive-trail';
import { type StderrCapture } from './support/stderr';

// Archives that verify offline (issue 21): audit-archive writes a wholly sealed month's rows
// (gzip NDJSON) and the seals that check them; audit-verify --archive checks them with no
// database against the public key, the witness and the entry key, erased rows as erased; each
// kind of tampering is named; an unsealed month is refused; retention with --archive-dir leaves
// an archive that verifies, and keeps a month whose archive cannot be written.
describe('archives that verify offline', () => {
  const database = 'archive';
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  const retainedLines: string[] = [];
  const month = monthsAgo(2).month;
  /** The seals made by the test's sealNow() calls (the app's own seals at start may come before them). */
  let first = 0;
  let second = 0;
  const newestSeal = async () => ((await sql('SELECT coalesce(max(seq), 0)::int AS seq FROM audit_seal')) as { seq: number }[])[0].seq;

  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  const at = (k: number, hour: number) => new Date(Date.parse(monthsAgo(k).start) + hour * 3_600_000);
  const log = (k: number, hour: number, userId: string) =>
    app.get(AuditService).log({ action: 'nda_created', entityType: 'Nda', entityId: `nda-${k}-${hour}`, userId, occurredAt: at(k, hour) });
  const archive = async (target: string, forMonth = month) => {
    const out: string[] = [];
    const code = await runArchive(
      ['--url', db.url(database), '--month', forMonth, '--out', target],
      {},
      { out: (l) => out.push(l), err: (l) => out.push(l) },
    );
    return { code, out };
  };
  /** `audit-verify --archive` with the public key, the witness and the entry key, with no database URL at all. */
  const verifyOffline = (path: string) => {
    const witness = join(dir, 'witness.log');
    writeFileSync(witness, witnessText(stderr) + retainedLines.map((line) => `${line}\n`).join(''));
    // No database: the URL given is empty, and nothing connects.
    return verify('', '--archive', path, '--witness', witness, '--public-key', join(dir, 'seal.pub'), '--entry-key', entryKey);
  };
  /** A copy of the clean archive, changed by `change` (the rows as lines, the seals file as an object). */
  const tampered = (name: string, change: { rows?: (lines: string[]) => string[]; seals?: (header: Record<string, unknown>) => void }) => {
    const target = join(dir, name);
    cpSync(join(dir, 'clean'), target, { recursive: true });
    const rowsPath = join(target, `audit-${month}.ndjson.gz`);
    const sealsPath = join(target, `audit-${month}.seals.json`);
    if (change.rows) {
      const lines = gunzipSync(readFileSync(rowsPath)).toString('utf8').trimEnd().split('\n');
      writeFileSync(rowsPath, gzipSync(`${change.rows(lines).join('\n')}\n`));
    }
    if (change.seals) {
      const header = JSON.parse(readFileSync(sealsPath, 'utf8')) as Record<string, unknown>;
      change.seals(header);
      writeFileSync(sealsPath, JSON.stringify(header));
    }
    return sealsPath;
  };
  const monthLines = (lines: string[]) => lines.filter((line) => (JSON.parse(line) as string[])[5].startsWith('nda-2-'));

  beforeAll(async () => {
    ({ dir, db, app, stderr } = await startArchiveTrail(database, 3, keys, entryKey));
    const sealer = app.get(AuditSealer);
    for (let hour = 1; hour <= 3; hour++) await log(2, hour, 'u-1');
    await sealer.sealNow();
    first = await newestSeal();
    // A seal that straddles two months: its rows of the next month travel in the archive too.
    for (let hour = 4; hour <= 5; hour++) await log(2, hour, 'u-2');
    await log(1, 1, 'u-2');
    await sealer.sealNow();
    second = await newestSeal();
    await log(1, 2, 'u-2');
    // Erased rows (issue 22) stay in the archive as erased, their erasure entry beside them.
    await app.get(AuditService).erase({ userId: 'u-1', requestedBy: 'dpo-1', reason: 'request #7' });
    await sealer.sealNow();
  }, 120_000);

  afterAll(() => stopArchiveTrail({ app, db, stderr, dir }));

  it('archives a sealed month and verifies it offline clean, with the public key, the witness and the entry key; erased rows as erased', async () => {
    const { code, out } = await archive(join(dir, 'clean'));
    expect(out).toEqual([
      expect.stringMatching(new RegExp(`audit-${month}\\.ndjson\\.gz: 6 rows \\(5 of ${month}\\), seals ${first}–${second}$`)),
      expect.stringMatching(new RegExp(`audit-${month}\\.seals\\.json: ${second - first + 1} seals, 0 checkpoints, 1 erasure entries$`)),
      expect.stringMatching(/^audit-archive: .* archived; check it with audit-verify --archive /),
    ]);
    expect(code).toBe(0);
    const result = await verifyOffline(join(dir, 'clean', `audit-${month}.seals.json`));
    expect(result.anomalies).toEqual([]);
    expect(result.out).toEqual(
      expect.arrayContaining([
        `archive: ${month} of trail ${database}/audit_log, 5 rows of the month, seals ${first}–${second}`,
        expect.stringMatching(
          new RegExp(
            `^audit-verify: 6 rows verified, ${second - first + 1} seals verified, 0 rows not sealed yet, 0 anomalies, against a witness of \\d+ seals, signatures checked$`,
          ),
        ),
        expect.stringMatching(/^entry authentication: checked, 6 rows authentic/),
        'erasure: 3 rows erased under 1 erasure entries',
        'result: CLEAN',
      ]),
    );
    expect(result.code).toBe(0);
    // The rows file alone names the archive as well.
    expect((await verifyOffline(join(dir, 'clean', `audit-${month}.ndjson.gz`))).code).toBe(0);
  }, 60_000);

  it('names each kind of tampering with an archive', async () => {
    const firstId = (lines: string[]) => (JSON.parse(monthLines(lines)[0]) as string[])[0];
    let removedId = '';
    let addedId = '';
    const cases: [string, Parameters<typeof tampered>[1], string | string[]][] = [
      [
        'row-changed',
        { rows: (lines) => lines.map((line) => (line === monthLines(lines)[3] ? line.replace('"nda_created"', '"nda_deleted"') : line)) },
        'ANOMALY row_changed row',
      ],
      [
        'row-removed',
        {
          rows: (lines) => {
            removedId = firstId(lines);
            return lines.slice(1);
          },
        },
        // The seals file still says how many rows of the month it had: one more (one fewer, below).
        ['ANOMALY row_missing row', `ANOMALY archive_mislabelled month ${month}`],
      ],
      [
        'row-added',
        {
          rows: (lines) => {
            // A copy of a row of the second seal (not erased), under a new id, in that seal's range.
            const copy = JSON.parse(lines[3]) as string[];
            addedId = randomUUID();
            copy[0] = addedId;
            return [...lines.slice(0, 4), JSON.stringify(copy), ...lines.slice(4)];
          },
        },
        ['ANOMALY row_forged row', `ANOMALY archive_mislabelled month ${month}`],
      ],
      [
        'seal-changed',
        { seals: (h) => ((h.seals as { seq: number; rowCount: number }[]).find((x) => x.seq === second)!.rowCount = 2) },
        `ANOMALY seal_changed seal ${second}`,
      ],
      [
        'signature-swapped',
        {
          seals: (h) => {
            const seals = h.seals as { seq: number; signature: string }[];
            seals.find((x) => x.seq === second)!.signature = seals.find((x) => x.seq === first)!.signature;
          },
        },
        `ANOMALY seal_signature_invalid seal ${second}`,
      ],
    ];
    for (const [name, change, expected] of cases) {
      const result = await verifyOffline(tampered(name, change));
      expect({ name, anomalies: result.anomalies, code: result.code }).toEqual({
        name,
        anomalies: [expected].flat().map((e) => expect.stringContaining(e) as unknown),
        code: 1,
      });
    }
    expect(removedId).not.toBe('');
    expect((await verifyOffline(tampered('row-removed-again', { rows: (l) => l.slice(1) }))).out).toContain(
      `ANOMALY row_missing row ${removedId}: sealed by seal ${first}, no longer in the table`,
    );
    expect(addedId).not.toBe('');
    // A witness that lacks a seal of the archive: it must show each one.
    const partial = join(dir, 'partial-witness.log');
    const lines = witnessText(stderr)
      .split('\n')
      .filter((line) => line !== '' && (JSON.parse(line) as { seq: number }).seq !== second);
    writeFileSync(partial, `${lines.join('\n')}\n`);
    const unwitnessed = await verify('', '--archive', join(dir, 'clean', `audit-${month}.seals.json`), '--witness', partial);
    expect({ anomalies: unwitnessed.anomalies, code: unwitnessed.code }).toEqual({
      anomalies: [`ANOMALY seal_witness_mismatch seal ${second}`],
      code: 1,
    });
    const truncated = tampered('truncated', {});
    const rowsPath = truncated.replace('.seals.json', '.ndjson.gz');
    const bytes = readFileSync(rowsPath);
    writeFileSync(rowsPath, bytes.subarray(0, bytes.length - 12));
    const cut = await verifyOffline(truncated);
    expect(cut.out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^archive: audit-.*\.ndjson\.gz is damaged after \d+ rows/),
        'result: ANOMALIES FOUND',
      ]),
    );
    expect(cut.code).toBe(1);
  }, 60_000);

  it('writes the archive readable by its owner only, as the spool is: its rows hold personal values and their salts', async () => {
    const target = join(dir, 'owner-only', 'nested');
    expect((await archive(target)).code).toBe(0);
    expect(statSync(join(dir, 'owner-only')).mode & 0o777).toBe(0o700);
    expect(statSync(target).mode & 0o777).toBe(0o700);
    for (const name of readdirSync(target)) expect([name, statSync(join(target, name)).mode & 0o777]).toEqual([name, 0o600]);
    expect(readdirSync(target).sort()).toEqual([`audit-${month}.ndjson.gz`, `audit-${month}.seals.json`]);
  }, 60_000);

  it('cannot check an archive without its seals file: exit 2', async () => {
    const result = await verifyOffline(join(dir, 'nowhere', `audit-${month}.seals.json`));
    expect(result.out.join('\n')).toMatch(/^audit-verify failed: cannot check the archive .*: ENOENT/m);
    expect(result.code).toBe(2);
  });

  it('refuses a month that is not wholly sealed, and writes nothing', async () => {
    await log(1, 3, 'u-3');
    const target = join(dir, 'unsealed');
    const { code, out } = await archive(target, monthsAgo(1).month);
    expect(out).toEqual([
      `audit-archive refused: ${monthsAgo(1).month} is not wholly sealed: 1 of its rows are after the newest seal (seal ${await newestSeal()})`,
    ]);
    expect(code).toBe(1);
    expect(existsSync(join(target, `audit-${monthsAgo(1).month}.seals.json`))).toBe(false);
  });

  it('retention keeps a month that gained a row between its archive and its removal: that row is in no archive', async () => {
    const client = new Client({ connectionString: db.url(database) });
    await client.connect();
    try {
      const archiveMonth = archiveBeforeRetire(client, {
        table: 'public.audit_log',
        trail: `${database}/audit_log`,
        out: join(dir, 'raced'),
        signingKey: createPrivateKey(keys.privatePem),
        timeoutMs: 30_000,
      });
      const decisions = await applyRetention(
        { query: async (text, parameters) => (await client.query(text, parameters)).rows as Record<string, unknown>[] },
        {
          table: 'public.audit_log',
          months: 1,
          legalHold: [monthsAgo(3).month],
          dryRun: false,
          signingKey: createPrivateKey(keys.privatePem),
          archive: async (m) => {
            const archived = await archiveMonth(m);
            // A late entry of that month, written and sealed after the archive was made.
            await log(2, 6, 'u-9');
            await eventually(async () => (await sql(`SELECT 1 FROM audit_log WHERE entity_id = 'nda-2-6'`)).length === 1);
            await app.get(AuditSealer).sealNow();
            return archived;
          },
        },
      );
      expect(decisions.find((d) => d.month === month)).toEqual(
        expect.objectContaining({ action: 'kept', reason: expect.stringMatching(/^its archive holds 5 of its rows, it holds 6 now/) }),
      );
      expect(await sql(`SELECT to_regclass($1) IS NOT NULL AS present`, [partitionAgo(2)])).toEqual([{ present: true }]);
    } finally {
      await client.end();
    }
  }, 60_000);

  it('retention with --archive-dir keeps a month whose archive cannot be written, and leaves a verifying archive of each month it removes', async () => {
    const retention = async (archiveDir: string) => {
      const out: string[] = [];
      const code = await runRetention(
        ['--url', db.url(database), '--signing-key', join(dir, 'seal.key'), '--months', '1', '--archive-dir', archiveDir],
        {},
        {
          out: (line) => out.push(line),
          err: (line) => (line.includes(`"event":"${AUDIT_EVENTS.retained}"`) ? retainedLines.push(line) : out.push(line)),
        },
      );
      return { code, out };
    };
    const blocked = join(dir, 'a-file');
    writeFileSync(blocked, 'not a directory');
    const failed = await retention(blocked);
    expect(failed.out).toEqual(
      expect.arrayContaining([expect.stringMatching(new RegExp(`^FAILED ${month} \\(${partitionAgo(2)}\\): not archived: `))]),
    );
    expect(failed.code).toBe(1);
    expect(await sql(`SELECT to_regclass($1) IS NOT NULL AS present`, [partitionAgo(2)])).toEqual([{ present: true }]);

    const target = join(dir, 'retained');
    const { code, out } = await retention(target);
    expect(out).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^RETIRED ${month} \\(${partitionAgo(2)}\\): 6 rows`))]));
    expect(code).toBe(0);
    expect(await sql(`SELECT to_regclass($1) IS NOT NULL AS present`, [partitionAgo(2)])).toEqual([{ present: false }]);
    const result = await verifyOffline(join(target, `audit-${month}.seals.json`));
    expect(result.anomalies).toEqual([]);
    expect(result.code).toBe(0);
    expect((await verifyOffline(join(target, `audit-${monthsAgo(3).month}.seals.json`))).out).toContain(
      `archive: ${monthsAgo(3).month} of trail ${database}/audit_log, 0 rows of the month, no seals`,
    );
  }, 60_000);
});
