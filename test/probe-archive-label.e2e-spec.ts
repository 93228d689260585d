import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { AuditSealer, AuditService } from '../src/audit';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { sealingKeys, startSealingApp, verify, witnessText } from './support/integrity';
import { monthsAgo, trailWithPastMonths } from './support/past-months';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// Probe (attacker C): an archive is often the only copy of a month once retention removed it.
// docs/LIFECYCLE.md lists what the offline check cannot prove: the segment's first link, a whole
// seal left off an end, and the unauthenticated `monthRows` and `erasures`. Everything else it
// checks: here, a row line written twice, and a genuine archive relabelled as another month.
describe('probe: audit-verify --archive and what the files say beyond the rows', () => {
  const database = 'probe_archive';
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;
  const month = monthsAgo(2).month;
  const at = (k: number, hour: number) => new Date(Date.parse(monthsAgo(k).start) + hour * 3_600_000);

  const verifyOffline = (path: string) => {
    const witness = join(dir, 'witness.log');
    writeFileSync(witness, witnessText(stderr));
    return verify('', '--archive', path, '--witness', witness, '--public-key', join(dir, 'seal.pub'), '--entry-key', entryKey);
  };
  const copyOf = (name: string) => {
    cpSync(join(dir, 'clean'), join(dir, name), { recursive: true });
    return join(dir, name);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-probe-archive-'));
    writeFileSync(join(dir, 'seal.pub'), keys.publicPem);
    db = await TestPostgres.start();
    await db.createDatabase(database);
    await trailWithPastMonths(db, database, 3);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url(database), {
      privacy: { personalData: [] },
      integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem, entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }] },
    });
    const sealer = app.get(AuditSealer);
    await sealer.sealNow();
    for (let hour = 1; hour <= 4; hour++) {
      await app
        .get(AuditService)
        .log({ action: 'nda_created', entityType: 'Nda', entityId: `nda-${hour}`, userId: 'u-1', occurredAt: at(2, hour) });
    }
    await sealer.sealNow();
    const out: string[] = [];
    const code = await runArchive(
      ['--url', db.url(database), '--month', month, '--out', join(dir, 'clean')],
      {},
      {
        out: (l) => out.push(l),
        err: (l) => out.push(l),
      },
    );
    expect({ code, out }).toEqual({ code: 0, out: expect.any(Array) as unknown });
    expect((await verifyOffline(join(dir, 'clean', `audit-${month}.seals.json`))).code).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

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
    expect(result.out.filter((line) => line.startsWith('archive:') || line.startsWith('result:'))).not.toEqual([
      expect.stringMatching(new RegExp(`^archive: ${other} of trail `)),
      'result: CLEAN',
    ]);
    expect(result.code).toBe(1);
  }, 60_000);

  it('does not vouch for a genuine archive under the name of another trail', async () => {
    const target = copyOf('retrailed');
    const sealsPath = join(target, `audit-${month}.seals.json`);
    const header = JSON.parse(readFileSync(sealsPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(sealsPath, JSON.stringify({ ...header, trail: 'payments/audit_log' }));

    const result = await verifyOffline(sealsPath);
    expect(result.out.filter((line) => line.startsWith('archive:') || line.startsWith('result:'))).not.toEqual([
      expect.stringMatching(/^archive: .* of trail payments\/audit_log,/),
      'result: CLEAN',
    ]);
    expect(result.code).toBe(1);
  }, 60_000);
});
