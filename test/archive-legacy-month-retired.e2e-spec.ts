import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';
import { monthsAgo } from './support/past-months';

// audit-archive refuses a month retention removed (`AUDIT_MONTH_RETIRED`, exit 1, nothing written;
// CHANGELOG, docs/LIFECYCLE.md "Archives") when the month lay in the legacy partition and
// `audit-retention --legacy --archive-dir DIR` removed it whole: its retention checkpoint names the
// range (`legacy..YYYY-MM`), not the month. The database holds none of its rows and the legacy
// archive is their only copy: a scheduled "archive that month" run into the same directory adds no
// archive claiming the month had no row.
describe('audit-archive of a month inside the legacy partition retention removed', () => {
  const database = 'archive_legacy_month_retired';
  const trail = new ArchiveErasureTrail(database);
  const { log } = trail;
  /** Four months back: before the legacy bound (three months back), so its rows are in the legacy partition. */
  const old = monthsAgo(4).month;

  beforeAll(async () => {
    await trail.start(async () => {
      await log(4, 1, 'u-old-1');
      await log(4, 2, 'u-old-2');
      await log(2, 1, 'u-1');
      await log(1, 1, 'u-2');
    });
    const out: string[] = [];
    const code = await runRetention(
      ['--url', trail.url(), '--signing-key', join(trail.dir, 'seal.key'), '--months', '1', '--legacy', '--archive-dir', trail.archives],
      {},
      { out: (line) => out.push(line), err: (line) => out.push(line) },
    );
    const gone = (await trail.db.query(`SELECT to_regclass('audit_log_legacy') IS NULL AS gone`, [], database))[0].gone as boolean;
    if (code !== 0 || !gone) throw new Error(`audit-retention --legacy exited ${code}, legacy gone: ${gone}:\n${out.join('\n')}`);
  }, 240_000);

  afterAll(async () => {
    await trail.stop();
  });

  it('refuses the month, writing nothing into the archive directory', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runArchive(
      ['--url', trail.url(), '--month', old, '--out', trail.archives],
      {},
      {
        out: (l) => out.push(l),
        err: (l) => err.push(l),
      },
    );
    const written = existsSync(join(trail.archives, `audit-${old}.seals.json`));
    expect({ code, refusal: err.map((l) => l.split(':').slice(0, 2).join(':')), written, out }).toEqual({
      code: 1,
      refusal: ['audit-archive refused: AUDIT_MONTH_RETIRED'],
      written: false,
      out: [],
    });
  }, 120_000);
});
