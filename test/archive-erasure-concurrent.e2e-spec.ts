import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
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

// Two `audit-erase --archive-dir` runs on the same archive at once (docs/LIFECYCLE.md, "Archives
// and erasure"): one holds the archive's lock while it rewrites it, the other fails at once with
// AUDIT_ARCHIVE_LOCKED, its rows file as it was and the archive verifying; running that erasure
// again finishes it. A lock left by a killed run is named as such and stays until removed.
describe('two archive erasures at once', () => {
  const database = 'archeraseconc';
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

  it('a run that overlaps another fails as locked, leaves an archive that verifies, and once rerun both subjects are erased', async () => {
    // Run A (u-7) is held just before it writes its seals file, while run B (u-8) runs from start to end.
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
    expect({ a: first.code, aErr: first.err, b: b.code, bErr: b.err }).toEqual({
      a: 0,
      aErr: [],
      b: 1,
      bErr: [
        expect.stringMatching(
          new RegExp(
            `^archive ${month}: FAILED AUDIT_ARCHIVE_LOCKED: .*\\.seals\\.json\\.lock is held by audit-erase pid ${process.pid} .*its rows file is as it was: erase the subject again with --archive-dir`,
          ),
        ),
      ],
    });
    const between = rowsText(archives);
    expect({ u7: between.includes('"u-7"'), u8: between.includes('"u-8"') }).toEqual({ u7: false, u8: true });
    const meanwhile = await verifyArchive(archives);
    expect({ code: meanwhile.code, anomalies: meanwhile.anomalies }).toEqual({ code: 0, anomalies: [] });
    const again = await erase(['--user', 'u-8']);
    expect({ code: again.code, err: again.err }).toEqual({ code: 0, err: [] });
    const text = rowsText(archives);
    expect({ u7: text.includes('"u-7"'), u8: text.includes('"u-8"'), u2: text.includes('"u-2"') }).toEqual({
      u7: false,
      u8: false,
      u2: true,
    });
    expect(readdirSync(archives).filter((name) => !/\.(seals\.json|ndjson\.gz)$/.test(name))).toEqual([]);
    const checked = await verifyArchive(archives);
    expect({ code: checked.code, anomalies: checked.anomalies }).toEqual({ code: 0, anomalies: [] });
  }, 120_000);

  it('a lock left by a killed run fails the next run, naming it as gone, until it is removed', async () => {
    const lock = `${sealsOf(archives)}.lock`;
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    writeFileSync(lock, `${JSON.stringify({ pid: gone, host: hostname(), since: new Date().toISOString() })}\n`);
    const before = readFileSync(rowsOf(archives));
    const stopped = await erase(['--user', 'u-2']);
    expect({ code: stopped.code, err: stopped.err }).toEqual({
      code: 1,
      err: [
        expect.stringMatching(
          new RegExp(`AUDIT_ARCHIVE_LOCKED: .*\\.lock was left by audit-erase pid ${gone} .*no longer running: remove that file`),
        ),
      ],
    });
    expect(readFileSync(rowsOf(archives)).equals(before)).toBe(true);
    rmSync(lock);
    const again = await erase(['--user', 'u-2']);
    expect({ code: again.code, err: again.err, left: existsSync(lock) }).toEqual({ code: 0, err: [], left: false });
    expect(rowsText(archives).includes('"u-2"')).toBe(false);
    const checked = await verifyArchive(archives);
    expect({ code: checked.code, anomalies: checked.anomalies }).toEqual({ code: 0, anomalies: [] });
  }, 120_000);
});
