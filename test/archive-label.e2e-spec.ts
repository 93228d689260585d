import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { cpSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { AuditSealer, AuditService } from '../src/audit';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { sealingKeys, verify, witnessText } from './support/integrity';
import { monthsAgo } from './support/past-months';
import { type TestPostgres } from './support/postgres';
import { startArchiveTrail, stopArchiveTrail } from './support/archive-trail';
import { type StderrCapture } from './support/stderr';

// An archive is often the only copy of a month once retention removed it: what its seals file
// says beyond the rows (its month, its trail) must be what its rows, seals and witness show.
describe('audit-verify --archive and the month and trail an archive names', () => {
  const database = 'archive_label';
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  const month = monthsAgo(2).month;
  const next = monthsAgo(1).month;
  const at = (k: number, hour: number) => new Date(Date.parse(monthsAgo(k).start) + hour * 3_600_000);

  const verifyOffline = (path: string, more: string[] = []) => {
    const witness = join(dir, 'witness.log');
    writeFileSync(witness, witnessText(stderr));
    return verify('', '--archive', path, '--witness', witness, '--public-key', join(dir, 'seal.pub'), '--entry-key', entryKey, ...more);
  };
  const copyOf = (name: string) => {
    cpSync(join(dir, 'clean'), join(dir, name), { recursive: true });
    return join(dir, name);
  };

  beforeAll(async () => {
    ({ dir, db, app, stderr } = await startArchiveTrail(database, 3, keys, entryKey));
    const sealer = app.get(AuditSealer);
    const log = (k: number, hour: number) =>
      app
        .get(AuditService)
        .log({ action: 'nda_created', entityType: 'Nda', entityId: `nda-${k}-${hour}`, userId: 'u-1', occurredAt: at(k, hour) });
    // Month -2 over two seals, then month -1 in the next.
    for (const step of [[2, 1], [2, 2], null, [2, 3], [2, 4], null, [1, 1], [1, 2], null] as const) {
      if (step) await log(step[0], step[1]);
      else await sealer.sealNow();
    }
    for (const m of [month, next]) {
      const out: string[] = [];
      const code = await runArchive(
        ['--url', db.url(database), '--month', m, '--out', join(dir, 'clean')],
        {},
        {
          out: (l) => out.push(l),
          err: (l) => out.push(l),
        },
      );
      expect({ code, out }).toEqual({ code: 0, out: expect.any(Array) as unknown });
      expect((await verifyOffline(join(dir, 'clean', `audit-${m}.seals.json`))).code).toBe(0);
    }
  }, 120_000);

  afterAll(() => stopArchiveTrail({ app, db, stderr, dir }));

  it('names a row line written twice in the rows file', async () => {
    const target = copyOf('twice');
    const rowsPath = join(target, `audit-${month}.ndjson.gz`);
    const lines = gunzipSync(readFileSync(rowsPath)).toString('utf8').trimEnd().split('\n');
    writeFileSync(rowsPath, gzipSync(`${[lines[0], ...lines].join('\n')}\n`));

    const result = await verifyOffline(join(target, `audit-${month}.seals.json`));
    expect(result.out).not.toContain('result: CLEAN');
    expect(result.code).toBe(1);
  }, 60_000);

  it('does not vouch, as another month, for a genuine archive relabelled (files renamed, `month` edited)', async () => {
    const other = monthsAgo(5).month;
    const target = copyOf('relabelled');
    const sealsPath = join(target, `audit-${other}.seals.json`);
    renameSync(join(target, `audit-${month}.ndjson.gz`), join(target, `audit-${other}.ndjson.gz`));
    renameSync(join(target, `audit-${month}.seals.json`), sealsPath);
    const header = JSON.parse(readFileSync(sealsPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(sealsPath, JSON.stringify({ ...header, month: other, rowsFile: `audit-${other}.ndjson.gz` }));

    const result = await verifyOffline(sealsPath);
    // Not one row of the archive is dated in `other`: a check that says CLEAN for "an archive of
    // `other`" vouches for a label nothing in the files supports.
    expect({ code: result.code, kinds: [...new Set(result.anomalies)], result: result.out.at(-1) }).toEqual({
      code: 1,
      kinds: [`ANOMALY archive_mislabelled month ${other}`],
      result: 'result: ANOMALIES FOUND',
    });
    expect(result.out).toContainEqual(
      expect.stringMatching(new RegExp(`^archive: ${other} of trail ${database}/audit_log, 0 rows of the month, seals \\d+–\\d+$`)),
    );
  }, 60_000);

  it('does not vouch for a genuine archive under the name of another trail', async () => {
    const target = copyOf('retrailed');
    const sealsPath = join(target, `audit-${month}.seals.json`);
    const header = JSON.parse(readFileSync(sealsPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(sealsPath, JSON.stringify({ ...header, trail: 'payments/audit_log' }));

    const result = await verifyOffline(sealsPath);
    expect({ code: result.code, anomalies: result.anomalies, result: result.out.at(-1) }).toEqual({
      code: 1,
      anomalies: [`ANOMALY archive_mislabelled month ${month}`],
      result: 'result: ANOMALIES FOUND',
    });
    expect(result.out).toContain(
      `ANOMALY archive_mislabelled month ${month}: the archive names trail payments/audit_log; its seals were checked against the witness of ${database}/audit_log`,
    );
  }, 60_000);

  it('names an archive that holds two months under the label of either', async () => {
    const target = copyOf('two-months');
    type Header = { seals: { seq: number }[]; rows: number; monthRows: number };
    const read = (m: string) => ({
      header: JSON.parse(readFileSync(join(target, `audit-${m}.seals.json`), 'utf8')) as Header,
      lines: gunzipSync(readFileSync(join(target, `audit-${m}.ndjson.gz`)))
        .toString('utf8')
        .trimEnd()
        .split('\n'),
    });
    const [first, second] = [read(month), read(next)];
    expect(second.header.seals[0].seq).toBe(first.header.seals.at(-1)!.seq + 1);
    const seals = [...first.header.seals, ...second.header.seals];
    const lines = [...first.lines, ...second.lines];
    for (const [m, header] of [
      [month, first.header],
      [next, second.header],
    ] as const) {
      writeFileSync(join(target, `audit-${m}.seals.json`), JSON.stringify({ ...header, seals, rows: lines.length }));
      writeFileSync(join(target, `audit-${m}.ndjson.gz`), gzipSync(`${lines.join('\n')}\n`));
      const result = await verifyOffline(join(target, `audit-${m}.seals.json`));
      expect({ month: m, code: result.code, anomalies: result.anomalies }).toEqual({
        month: m,
        code: 1,
        anomalies: [`ANOMALY archive_mislabelled month ${m}`],
      });
    }
  }, 60_000);

  it('names an archive emptied of every row and seal, with no checkpoint saying its month had none', async () => {
    const target = copyOf('emptied');
    const sealsPath = join(target, `audit-${month}.seals.json`);
    const header = JSON.parse(readFileSync(sealsPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(sealsPath, JSON.stringify({ ...header, seals: [], checkpoints: [], rows: 0, monthRows: 0 }));
    writeFileSync(join(target, `audit-${month}.ndjson.gz`), gzipSync(''));

    const result = await verifyOffline(sealsPath);
    expect({ code: result.code, anomalies: result.anomalies }).toEqual({
      code: 1,
      anomalies: [`ANOMALY archive_mislabelled month ${month}`],
    });
  }, 60_000);

  it('writes the trail given with --trail (an archive from a restored copy), and holds it to the witness', async () => {
    const archive = async (trail: string, out: string) => {
      const code = await runArchive(
        ['--url', db.url(database), '--month', month, '--out', join(dir, out), '--trail', trail],
        {},
        { out: () => undefined, err: () => undefined },
      );
      expect(code).toBe(0);
      return join(dir, out, `audit-${month}.seals.json`);
    };
    const named = await archive(`${database}/audit_log`, 'named');
    expect((JSON.parse(readFileSync(named, 'utf8')) as { trail: string }).trail).toBe(`${database}/audit_log`);
    expect((await verifyOffline(named)).code).toBe(0);
    const other = await archive('restored/audit_log', 'named-other');
    expect((await verifyOffline(other)).anomalies).toEqual([`ANOMALY archive_mislabelled month ${month}`]);
  }, 60_000);
});
