import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';
import { monthsAgo } from './support/past-months';

// Promise (CHANGELOG Fixed; docs/LIFECYCLE.md, "Archives"): audit-archive "now refuses a month
// retention removed (`AUDIT_MONTH_RETIRED`, exit 1)": "the database holds none of its rows, and the
// archive retention wrote is the month's only copy, so a scheduled 'archive last month' job that runs
// after retention, into the same directory, leaves it as it is".
//
// Break: the refusal looks only for a checkpoint whose month is exactly `--month`. A month whose rows
// sat in the legacy partition, removed whole by `audit-retention --legacy --archive-dir DIR` (its
// checkpoint names `legacy..YYYY-MM`), is not recognised as removed: `audit-archive --month <that
// month> --out DIR` reads no row, writes a new pair `audit-<month>.*` into DIR holding 0 rows of the
// month, prints "<month> archived" and exits 0. The month's rows live only in the legacy archive; DIR
// now also holds an archive claiming the month had none (docs/LIFECYCLE.md says the offline check
// names an archive with no row of its month unless a checkpoint of that month says it had none; that
// check was not run here).
//
// Observed: exit 0, "audit-2026-08.ndjson.gz: 0 rows (0 of 2026-08), no seals", "0 seals, 0
// checkpoints, 0 erasure entries", "2026-08 archived"; the pair is in DIR.
//
// Severity: low (no row is lost, the legacy archive is untouched; a misleading, failing archive is added).
//
// Fix guess: in writeArchive's retired check, also refuse a month whose span lies before the bound
// of a legacy checkpoint (`retention_month` not a first day, month < its month + 1).
describe('probe: audit-archive of a month inside a legacy partition retention removed', () => {
  const database = 'probe_archive_legacy_month';
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
