import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { sealingKeys, verify, witnessText } from './support/integrity';
import { monthsAgo } from './support/past-months';
import { type TestPostgres } from './support/postgres';
import { startArchiveTrail, stopArchiveTrail } from './support/archive-trail';
import { type StderrCapture } from './support/stderr';

// Once retention removed a month, its archive is the only copy of its rows (docs/LIFECYCLE.md,
// "What the offline check proves"). The month's own retention checkpoint is genuine, signed and
// witnessed, and the next month's archive carries it: it never excuses the month's own rows, and
// with the witness it binds the archive to the month's row count and the newest seal of the month.
describe("archives checked against the month's own retention checkpoint", () => {
  const database = 'archive_ckpt';
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  const retainedLines: string[] = [];
  const old = monthsAgo(3).month;
  const next = monthsAgo(2).month;
  const at = (k: number, hour: number) => new Date(Date.parse(monthsAgo(k).start) + hour * 3_600_000);
  const log = (k: number, hour: number) =>
    app
      .get(AuditService)
      .log({ action: 'nda_created', entityType: 'Nda', entityId: `nda-${k}-${hour}`, userId: 'u-1', occurredAt: at(k, hour) });
  const verifyOffline = (path: string) => {
    const witness = join(dir, 'witness.log');
    writeFileSync(witness, witnessText(stderr) + retainedLines.map((line) => `${line}\n`).join(''));
    return verify('', '--archive', path, '--witness', witness, '--public-key', join(dir, 'seal.pub'), '--entry-key', entryKey);
  };

  beforeAll(async () => {
    ({ dir, db, app, stderr } = await startArchiveTrail(database, 3, keys, entryKey));
    const sealer = app.get(AuditSealer);
    // One seal over rows of months -3 and -2, one over month -3's last row, another over month -1's.
    await log(3, 1);
    await log(2, 1);
    await log(3, 2);
    await log(2, 2);
    await sealer.sealNow();
    await log(3, 3);
    await sealer.sealNow();
    await log(1, 1);
    await sealer.sealNow();
    // Retention archives month -3 and removes it; then month -2 is archived by hand.
    const out: string[] = [];
    const code = await runRetention(
      ['--url', db.url(database), '--signing-key', join(dir, 'seal.key'), '--months', '2', '--archive-dir', join(dir, 'r1')],
      {},
      {
        out: (line) => out.push(line),
        err: (line) => (line.includes(`"event":"${AUDIT_EVENTS.retained}"`) ? retainedLines.push(line) : out.push(line)),
      },
    );
    expect({ code, retired: out.filter((l) => l.startsWith(`RETIRED ${old}`)).length }).toEqual({ code: 0, retired: 1 });
    for (const month of [next, monthsAgo(1).month]) {
      const archived = await runArchive(
        ['--url', db.url(database), '--month', month, '--out', join(dir, 'hand')],
        {},
        { out: () => undefined, err: () => undefined },
      );
      expect(archived).toBe(0);
    }
    expect((await verifyOffline(join(dir, 'r1', `audit-${old}.seals.json`))).code).toBe(0);
  }, 120_000);

  afterAll(() => stopArchiveTrail({ app, db, stderr, dir }));

  it('names the rows of the month removed from its archive, whatever checkpoints the seals file lists', async () => {
    type Archived = { retention?: { month: string } | null };
    const nextHeader = JSON.parse(readFileSync(join(dir, 'hand', `audit-${next}.seals.json`), 'utf8')) as {
      seals: Archived[];
      checkpoints?: Archived[];
    };
    const checkpoint = [...nextHeader.seals, ...(nextHeader.checkpoints ?? [])].find((s) => s.retention?.month?.startsWith(old));
    expect(checkpoint).toBeDefined();

    cpSync(join(dir, 'r1'), join(dir, 'emptied'), { recursive: true });
    const sealsPath = join(dir, 'emptied', `audit-${old}.seals.json`);
    const rowsPath = join(dir, 'emptied', `audit-${old}.ndjson.gz`);
    const header = JSON.parse(readFileSync(sealsPath, 'utf8')) as { checkpoints?: Archived[] };
    writeFileSync(sealsPath, JSON.stringify({ ...header, checkpoints: [...(header.checkpoints ?? []), checkpoint] }));
    const lines = gunzipSync(readFileSync(rowsPath)).toString('utf8').trimEnd().split('\n');
    const kept = lines.filter((line) => !(JSON.parse(line) as string[])[5].startsWith('nda-3-'));
    expect(lines.length - kept.length).toBe(3);
    writeFileSync(rowsPath, gzipSync(`${kept.join('\n')}\n`));

    const result = await verifyOffline(sealsPath);
    expect({ code: result.code, missing: result.anomalies.filter((a) => a.startsWith('ANOMALY row_missing')).length }).toEqual({
      code: 1,
      missing: 3,
    });
  }, 60_000);

  it("names an archive cut short by its month's last seal against the month's retention checkpoint in the witness", async () => {
    type Archived = { seq: number };
    cpSync(join(dir, 'r1'), join(dir, 'cut'), { recursive: true });
    const sealsPath = join(dir, 'cut', `audit-${old}.seals.json`);
    const rowsPath = join(dir, 'cut', `audit-${old}.ndjson.gz`);
    const header = JSON.parse(readFileSync(sealsPath, 'utf8')) as { seals: Archived[]; monthRows: number; rows: number };
    expect(header.seals.length).toBe(2);
    const lines = gunzipSync(readFileSync(rowsPath)).toString('utf8').trimEnd().split('\n');
    const kept = lines.filter((line) => (JSON.parse(line) as string[])[5] !== 'nda-3-3');
    expect(lines.length - kept.length).toBe(1);
    writeFileSync(sealsPath, JSON.stringify({ ...header, seals: header.seals.slice(0, 1), monthRows: 2, rows: kept.length }));
    writeFileSync(rowsPath, gzipSync(`${kept.join('\n')}\n`));

    const result = await verifyOffline(sealsPath);
    expect({ code: result.code, anomalies: result.anomalies }).toEqual({
      code: 1,
      anomalies: [`ANOMALY archive_mislabelled month ${old}`],
    });
  }, 60_000);

  it("names the rows of the month removed behind its own checkpoint chained into the segment's seals", async () => {
    type Archived = { seq: number; retention?: { month: string } | null };
    type Header = { seals: Archived[]; checkpoints: Archived[]; rows: number; monthRows: number };
    const read = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Header;
    const lines = (path: string) => gunzipSync(readFileSync(path)).toString('utf8').trimEnd().split('\n');
    const checkpoint = read(join(dir, 'hand', `audit-${next}.seals.json`)).checkpoints.find((c) => c.retention?.month === old)!;
    const last = monthsAgo(1).month;
    const lastMonth = read(join(dir, 'hand', `audit-${last}.seals.json`));
    cpSync(join(dir, 'r1'), join(dir, 'chained'), { recursive: true });
    const sealsPath = join(dir, 'chained', `audit-${old}.seals.json`);
    const rowsPath = join(dir, 'chained', `audit-${old}.ndjson.gz`);
    const header = read(sealsPath);
    // The chain runs on unbroken: the month's seals, month -1's seal, then the month's checkpoint.
    const seals = [...header.seals, ...lastMonth.seals, checkpoint];
    expect(seals.map((seal) => seal.seq - seals[0].seq)).toEqual([0, 1, 2, 3]);
    const kept = [...lines(rowsPath), ...lines(join(dir, 'hand', `audit-${last}.ndjson.gz`))].filter(
      (line) => !(JSON.parse(line) as string[])[5].startsWith('nda-3-'),
    );
    writeFileSync(sealsPath, JSON.stringify({ ...header, seals, rows: kept.length, monthRows: 0 }));
    writeFileSync(rowsPath, gzipSync(`${kept.join('\n')}\n`));

    const result = await verifyOffline(sealsPath);
    expect({ code: result.code, missing: result.anomalies.filter((a) => a.startsWith('ANOMALY row_missing')).length }).toEqual({
      code: 1,
      missing: 3,
    });
    expect(result.anomalies).toContain(`ANOMALY archive_mislabelled month ${old}`);
  }, 60_000);
});
