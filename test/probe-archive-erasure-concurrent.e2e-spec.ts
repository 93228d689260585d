import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { type ArchiveFiles, boundedArchiveFiles } from '../src/audit/lifecycle/archive-files';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { runErase } from '../src/audit/privacy/erase-command';
import { sealingKeys, verify, witnessText } from './support/integrity';
import { monthsAgo } from './support/past-months';
import { type TestPostgres } from './support/postgres';
import { startArchiveTrail, stopArchiveTrail } from './support/archive-trail';
import { type StderrCapture } from './support/stderr';

// Attack (A15): two `audit-erase --archive-dir` runs on the same directory at once. Both write the
// same temporary names (`<rows>.partial`, `<seals>.partial`, opened with 'w', no lock), so one
// run's rename can carry the other's rows file with its own seals file. The promise
// (docs/LIFECYCLE.md, "Archives and erasure"): "A failure leaves the old rows file in place and an
// archive that verifies; the command exits 1, and running the same erasure again finishes it."
describe('probe: two archive erasures at once', () => {
  const database = 'probearchconc';
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
  const erase = async (args: string[], files?: (d: string, ms: number) => ArchiveFiles) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runErase(
      ['--url', db.url(database), '--by', 'dpo', '--archive-dir', archives, ...args],
      { AUDIT_INTEGRITY_ENTRY_KEY: entryKey },
      { out: (l) => out.push(l), err: (l) => err.push(l) },
      files,
    );
    return { code, out, err };
  };
  const rowsText = (where: string) => gunzipSync(readFileSync(rowsOf(where))).toString('utf8');

  beforeAll(async () => {
    ({ dir, db, app, stderr } = await startArchiveTrail(database, 3, keys, entryKey));
    archives = join(dir, 'archives');
    await log(2, 1, 'u-7');
    await log(2, 2, 'u-8');
    await log(2, 3, 'u-2');
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
  }, 180_000);

  afterAll(() => stopArchiveTrail({ app, db, stderr, dir }));

  it('a run that overlaps another and fails as "run it again" leaves, once rerun, an archive that verifies with both subjects erased', async () => {
    // Run A (u-7) is held just after its rows are rewritten, while run B (u-8) runs from start to end.
    let reached: () => void = () => undefined;
    const atSeals = new Promise<void>((resolve) => (reached = resolve));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const held = (d: string, ms: number): ArchiveFiles => {
      const files = boundedArchiveFiles(d, ms);
      return {
        ...files,
        writeFile: async (path, text) => {
          reached();
          await gate;
          await files.writeFile(path, text);
        },
      };
    };
    const a = erase(['--user', 'u-7'], held);
    await atSeals;
    const b = await erase(['--user', 'u-8']);
    release();
    const first = await a;
    expect({ b: b.code, bErr: b.err }).toEqual({ b: 0, bErr: [] });
    // Whatever run A answered, following its advice (run it again when it failed) must leave a whole archive.
    if (first.code !== 0) {
      expect(first.err).toEqual([expect.stringMatching(/erase the subject again with --archive-dir/)]);
      const again = await erase(['--user', 'u-7']);
      expect(again.code).toBe(0);
    }
    const text = rowsText(archives);
    expect({ u7: text.includes('"u-7"'), u8: text.includes('"u-8"'), u2: text.includes('"u-2"') }).toEqual({
      u7: false,
      u8: false,
      u2: true,
    });
    const checked = await verifyArchive(archives);
    expect({ code: checked.code, anomalies: checked.anomalies }).toEqual({ code: 0, anomalies: [] });
  }, 120_000);
});
