import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditSealer, AuditService } from '../src/audit';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { sealingKeys } from './support/integrity';
import { monthsAgo } from './support/past-months';
import { type TestPostgres } from './support/postgres';
import { startArchiveTrail, stopArchiveTrail } from './support/archive-trail';
import { type StderrCapture } from './support/stderr';

// An archive holds the trail's personal values: its files are owner-only (0600), also when a run
// that was killed (an earlier version's, 0644) left its `.partial` files in --out, since a file
// reopened keeps its mode: each is created anew.
describe('an archive written over a leftover .partial is owner-only', () => {
  const database = 'archive_owner_only';
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  const month = monthsAgo(2).month;
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let dir: string;

  beforeAll(async () => {
    ({ dir, db, app, stderr } = await startArchiveTrail(database, 3, keys, entryKey));
    const at = (hour: number) => new Date(Date.parse(monthsAgo(2).start) + hour * 3_600_000);
    for (let hour = 1; hour <= 2; hour++)
      await app
        .get(AuditService)
        .log({ action: 'nda_created', entityType: 'Nda', entityId: `nda-${hour}`, userId: 'u-1', occurredAt: at(hour) });
    await app.get(AuditService).log({
      action: 'nda_created',
      entityType: 'Nda',
      entityId: 'nda-next',
      userId: 'u-1',
      occurredAt: new Date(Date.parse(monthsAgo(1).start) + 3_600_000),
    });
    await app.get(AuditSealer).sealNow();
  }, 120_000);

  afterAll(() => stopArchiveTrail({ app, db, stderr, dir }));

  it('leaves no archive file readable by others when a killed run left its .partial files (0644) behind', async () => {
    const target = join(dir, 'out');
    mkdirSync(target, { mode: 0o700 });
    writeFileSync(join(target, `audit-${month}.ndjson.gz.partial`), 'left by a killed run', { mode: 0o644 });
    writeFileSync(join(target, `audit-${month}.seals.json.partial`), 'left by a killed run', { mode: 0o644 });
    const out: string[] = [];
    const code = await runArchive(
      ['--url', db.url(database), '--month', month, '--out', target],
      {},
      { out: (l) => out.push(l), err: (l) => out.push(l) },
    );
    expect([code, out]).toEqual([0, expect.any(Array)]);
    expect(readdirSync(target).sort()).toEqual([`audit-${month}.ndjson.gz`, `audit-${month}.seals.json`]);
    for (const name of readdirSync(target)) expect([name, statSync(join(target, name)).mode & 0o777]).toEqual([name, 0o600]);
  }, 60_000);
});
