import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { AuditSealer, AuditService } from '../src/audit';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { sealingKeys, verify, witnessText } from './support/integrity';
import { monthsAgo } from './support/past-months';
import { type TestPostgres } from './support/postgres';
import { startArchiveTrail, stopArchiveTrail } from './support/archive-trail';
import { type StderrCapture } from './support/stderr';

// docs/LIFECYCLE.md "What the offline check proves": the first and the last seal of an archive's
// segment must each hold a row of its month, so that "one that holds a second month's seals, is
// named". The rows file's line order is not sealed: which seal holds a row is decided by the
// row's own key, never by where its line stands in the file.
describe('audit-verify --archive and the order of the rows file', () => {
  const database = 'archive_row_order';
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  const month = monthsAgo(2).month;
  const next = monthsAgo(1).month;
  const at = (k: number, hour: number) => new Date(Date.parse(monthsAgo(k).start) + hour * 3_600_000);

  const verifyOffline = (path: string) => {
    const witness = join(dir, 'witness.log');
    writeFileSync(witness, witnessText(stderr));
    return verify('', '--archive', path, '--witness', witness, '--public-key', join(dir, 'seal.pub'), '--entry-key', entryKey);
  };
  type Header = { seals: { seq: number }[]; rows: number; monthRows: number };
  const read = (target: string, m: string) => ({
    header: JSON.parse(readFileSync(join(target, `audit-${m}.seals.json`), 'utf8')) as Header,
    lines: gunzipSync(readFileSync(join(target, `audit-${m}.ndjson.gz`)))
      .toString('utf8')
      .trimEnd()
      .split('\n'),
  });

  beforeAll(async () => {
    ({ dir, db, app, stderr } = await startArchiveTrail(database, 3, keys, entryKey));
    const sealer = app.get(AuditSealer);
    const log = (k: number, hour: number) =>
      app
        .get(AuditService)
        .log({ action: 'nda_created', entityType: 'Nda', entityId: `nda-${k}-${hour}`, userId: 'u-1', occurredAt: at(k, hour) });
    // Month -2 over two seals, then month -1 in the next two.
    for (const step of [[2, 1], [2, 2], null, [2, 3], [2, 4], null, [1, 1], [1, 2], null, [1, 3], null] as const) {
      if (step) await log(step[0], step[1]);
      else await sealer.sealNow();
    }
    for (const m of [month, next]) {
      const code = await runArchive(
        ['--url', db.url(database), '--month', m, '--out', join(dir, 'clean')],
        {},
        {
          out: () => undefined,
          err: () => undefined,
        },
      );
      expect(code).toBe(0);
      expect((await verifyOffline(join(dir, 'clean', `audit-${m}.seals.json`))).code).toBe(0);
    }
  }, 120_000);

  afterAll(() => stopArchiveTrail({ app, db, stderr, dir }));

  it('names an archive of a month extended with the next month’s seals and rows, one row of the month moved to the end of the file', async () => {
    const target = join(dir, 'extended');
    cpSync(join(dir, 'clean'), target, { recursive: true });
    const [own, other] = [read(target, month), read(target, next)];
    expect(other.header.seals[0].seq).toBe(own.header.seals.at(-1)!.seq + 1);
    // The month's first row line moved after the next month's rows: every line is still a genuine, sealed row.
    const lines = [...own.lines.slice(1), ...other.lines, own.lines[0]];
    writeFileSync(
      join(target, `audit-${month}.seals.json`),
      JSON.stringify({ ...own.header, seals: [...own.header.seals, ...other.header.seals], rows: lines.length }),
    );
    writeFileSync(join(target, `audit-${month}.ndjson.gz`), gzipSync(`${lines.join('\n')}\n`));

    const result = await verifyOffline(join(target, `audit-${month}.seals.json`));
    // Its last seals hold no row of the month: the end rule names it (as it does with the lines in order).
    expect({ code: result.code, anomalies: result.anomalies }).toEqual({
      code: 1,
      anomalies: [`ANOMALY archive_mislabelled month ${month}`],
    });
  }, 60_000);

  it('names the same archive with its rows in file order (the end rule without reordering)', async () => {
    const target = join(dir, 'extended-in-order');
    cpSync(join(dir, 'clean'), target, { recursive: true });
    const [own, other] = [read(target, month), read(target, next)];
    const lines = [...own.lines, ...other.lines];
    writeFileSync(
      join(target, `audit-${month}.seals.json`),
      JSON.stringify({ ...own.header, seals: [...own.header.seals, ...other.header.seals], rows: lines.length }),
    );
    writeFileSync(join(target, `audit-${month}.ndjson.gz`), gzipSync(`${lines.join('\n')}\n`));

    const result = await verifyOffline(join(target, `audit-${month}.seals.json`));
    expect({ code: result.code, anomalies: result.anomalies }).toEqual({
      code: 1,
      anomalies: [`ANOMALY archive_mislabelled month ${month}`],
    });
  }, 60_000);
  it('names a row line appended as a second gzip member', async () => {
    const target = join(dir, 'two-members');
    cpSync(join(dir, 'clean'), target, { recursive: true });
    const rowsPath = join(target, `audit-${month}.ndjson.gz`);
    const { lines } = read(target, month);
    writeFileSync(rowsPath, Buffer.concat([readFileSync(rowsPath), gzipSync(`${lines[1]}\n`)]));

    const result = await verifyOffline(join(target, `audit-${month}.seals.json`));
    expect(result.code).toBe(1);
    expect(result.anomalies.length).toBeGreaterThan(0);
  }, 60_000);

  it('does not call clean a rows file with bytes after its gzip stream (named damaged)', async () => {
    const target = join(dir, 'trailing');
    cpSync(join(dir, 'clean'), target, { recursive: true });
    const rowsPath = join(target, `audit-${month}.ndjson.gz`);
    writeFileSync(rowsPath, Buffer.concat([readFileSync(rowsPath), Buffer.from('hidden trailing bytes')]));

    const result = await verifyOffline(join(target, `audit-${month}.seals.json`));
    expect(result.code).toBe(1);
    expect(result.out).toContainEqual(expect.stringMatching(/^archive: audit-.*\.ndjson\.gz is damaged after \d+ rows/));
  }, 60_000);
});
