import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
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

// Attack (A15): an erased archive whose rows were erased beyond what its erasure entries account
// for in THIS archive must not verify clean (docs/LIFECYCLE.md, "What the offline check proves of
// an erased archive": "rows marked with a real erasure's id beyond its count" are
// `row_erased_unaccounted`). The entry's `rows` (its database count) stretches the allowance in
// an archive the entry itself says it erased fewer rows in, or none at all.
describe('probe: erasure entries accounting for more archived rows than they erased there', () => {
  const database = 'probearchcount';
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
  const overErased = { code: 1, anomalies: [expect.stringMatching(/^ANOMALY row_erased_unaccounted row /)] };

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

  it("an entry of an erasure that erased nothing in this archive, replayed from another month's archive, accounts for no row here", async () => {
    const result = await erase(['--user', 'u-6']);
    expect({ code: result.code, line: result.out.filter((l) => l.startsWith(`archive ${month}`)) }).toEqual({ code: 0, line: [] });
    await app.get(AuditSealer).sealNow();
    const later = monthsAgo(1).month;
    const target = join(dir, 'later');
    const out: string[] = [];
    const code = await runArchive(
      ['--url', db.url(database), '--month', later, '--out', target],
      {},
      {
        out: (l) => out.push(l),
        err: (l) => out.push(l),
      },
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
    expect(entry).toBeDefined();
    const replayed = tampered('replayed', {
      rows: eraseByHand(marker),
      seals: (header) => void (header.erasureEntries as (string | null)[][]).push(entry),
    });
    const checked = await verifyArchive(replayed);
    expect({ code: checked.code, anomalies: checked.anomalies }).toEqual(overErased);
  }, 120_000);
});
