import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { sealingKeys, verify, witnessText } from './support/integrity';
import { monthsAgo, partitionAgo } from './support/past-months';
import { type TestPostgres } from './support/postgres';
import { startArchiveTrail, stopArchiveTrail } from './support/archive-trail';
import { type StderrCapture } from './support/stderr';

// Monthly retention with archives, as users run it: a user with rows in several months is erased
// (the entry in the current month), one seal holds rows of two months, retention with --archive-dir
// removes the older month, then the next month is archived by hand and retired in turn. The next
// archive carries the first month's checkpoint (with the erasures it carried forward, which its
// hash covers): every archive and the database verify clean.
describe('archives and retention of months that share a seal, after an erasure across months', () => {
  const database = 'archret';
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  const retainedLines: string[] = [];

  const sql = (text: string, parameters: unknown[] = []) => db.query(text, parameters, database);
  const at = (k: number, hour: number) => new Date(Date.parse(monthsAgo(k).start) + hour * 3_600_000);
  const log = (k: number, hour: number, userId: string) =>
    app.get(AuditService).log({ action: 'nda_created', entityType: 'Nda', entityId: `nda-${k}-${hour}`, userId, occurredAt: at(k, hour) });
  const witness = () => {
    const path = join(dir, 'witness.log');
    writeFileSync(path, witnessText(stderr) + retainedLines.map((line) => `${line}\n`).join(''));
    return path;
  };
  const verifyArchive = (path: string) =>
    verify('', '--archive', path, '--witness', witness(), '--public-key', join(dir, 'seal.pub'), '--entry-key', entryKey);
  const verifyDatabase = () =>
    verify(db.url(database), '--witness', witness(), '--public-key', join(dir, 'seal.pub'), '--entry-key', entryKey);
  const retention = async (months: string, archiveDir: string) => {
    const out: string[] = [];
    const code = await runRetention(
      ['--url', db.url(database), '--signing-key', join(dir, 'seal.key'), '--months', months, '--archive-dir', archiveDir],
      {},
      {
        out: (line) => out.push(line),
        err: (line) => (line.includes(`"event":"${AUDIT_EVENTS.retained}"`) ? retainedLines.push(line) : out.push(line)),
      },
    );
    return { code, out };
  };
  const summary = (r: { code: number; anomalies: string[]; out: string[] }) => ({
    code: r.code,
    anomalies: r.anomalies,
    result: r.out.filter((l) => l.startsWith('result:')),
  });
  const clean = { code: 0, anomalies: [], result: ['result: CLEAN'] };

  beforeAll(async () => {
    ({ dir, db, app, stderr } = await startArchiveTrail(database, 4, keys, entryKey));
    const sealer = app.get(AuditSealer);
    // One seal over rows of months -3 and -2 (interleaved), another over month -1's.
    await log(3, 1, 'u-1');
    await log(2, 1, 'u-1');
    await log(3, 2, 'u-2');
    await log(2, 2, 'u-2');
    await sealer.sealNow();
    await log(1, 1, 'u-1');
    await app.get(AuditService).erase({ userId: 'u-1', requestedBy: 'dpo-1', reason: 'request #9' });
    await sealer.sealNow();
    expect(summary(await verifyDatabase())).toEqual(clean);
  }, 120_000);

  afterAll(() => stopArchiveTrail({ app, db, stderr, dir }));

  it('retention removes month -3 with its archive; the archive and the database verify clean', async () => {
    const first = await retention('2', join(dir, 'r1'));
    expect({ code: first.code, retired: first.out.filter((l) => l.startsWith('RETIRED')).length }).toEqual({ code: 0, retired: 2 });
    expect(await sql(`SELECT to_regclass($1) IS NOT NULL AS present`, [partitionAgo(3)])).toEqual([{ present: false }]);
    expect(summary(await verifyArchive(join(dir, 'r1', `audit-${monthsAgo(3).month}.seals.json`)))).toEqual(clean);
    expect(summary(await verifyDatabase())).toEqual(clean);
  }, 90_000);

  it('archives month -2 by hand, whose seal held rows of the month retired, and it verifies clean', async () => {
    const out: string[] = [];
    const code = await runArchive(
      ['--url', db.url(database), '--month', monthsAgo(2).month, '--out', join(dir, 'hand')],
      {},
      { out: (l) => out.push(l), err: (l) => out.push(l) },
    );
    expect({ code, last: out.at(-1) }).toEqual({ code: 0, last: expect.stringMatching(/archived; check it with/) });
    expect(summary(await verifyArchive(join(dir, 'hand', `audit-${monthsAgo(2).month}.seals.json`)))).toEqual(clean);
  }, 90_000);

  it('retention then removes month -2 with its archive; both verify clean', async () => {
    const second = await retention('1', join(dir, 'r2'));
    expect({ code: second.code, out: second.out.filter((l) => /^(RETIRED|FAILED)/.test(l)) }).toEqual({
      code: 0,
      out: [expect.stringMatching(new RegExp(`^RETIRED ${monthsAgo(2).month} `))],
    });
    expect(summary(await verifyArchive(join(dir, 'r2', `audit-${monthsAgo(2).month}.seals.json`)))).toEqual(clean);
    expect(summary(await verifyDatabase())).toEqual(clean);
  }, 90_000);
});
