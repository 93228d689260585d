import { join } from 'node:path';
import { AuditSealer, AuditService } from '../src/audit';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';

// Promise (src/audit/occurred-at.ts, docs/LIFECYCLE.md "Archives"): an `occurredAt` in the years
// 0001 to 9999 is "kept as given", the table accepts those years, and `audit-archive --month YYYY-MM`
// "writes a wholly sealed month's rows (…) and the seals that check them", refusing a month that is
// not wholly sealed.
//
// Break: the month's span is computed with `Date.UTC(year, …)` (month-partitions.ts `monthStart`),
// which reads the years 0 to 99 as 1900 to 1999. `--month 0050-03` looks for rows of 1950-03: the
// sealed row dated 0050-03-10 is not archived, and the command says the month is archived with 0 of
// its rows (exit 0). The same span is used by the unsealed check, the month's row count and the
// legacy range arithmetic.
//
// Observed: exit 0, "0 rows (0 of 0050-03), no seals", the month's sealed row left out.
//
// Severity: low (only rows dated before the year 100, which the module stores as given; a scheduled
// archive of such a month reports success with none of its rows).
//
// Fix guess: build the instant with `new Date(0)` and `setUTCFullYear(year, month - 1, 1)` (or
// parse `YYYY-MM-01T00:00:00Z`), in `monthStart` and wherever `Date.UTC` takes a year.
describe('probe: audit-archive of a month before the year 100', () => {
  const database = 'probe_archive_early_year';
  const trail = new ArchiveErasureTrail(database);

  beforeAll(async () => {
    await trail.open();
    await trail.app.get(AuditService).log({
      action: 'nda_created',
      entityType: 'Nda',
      entityId: 'nda-early',
      userId: 'u-early',
      occurredAt: new Date('0050-03-10T12:00:00.000Z'),
    });
    await trail.app.get(AuditSealer).sealNow();
    const [{ n }] = await trail.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_log WHERE occurred_at >= '0050-03-01T00:00:00Z' AND occurred_at < '0050-04-01T00:00:00Z'`,
      [],
      database,
    );
    if (n !== 1) throw new Error(`expected the row of 0050-03 in the table, found ${n}`);
  }, 180_000);

  afterAll(async () => {
    await trail.stop();
  });

  it("archives the month's sealed row", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runArchive(
      ['--url', trail.url(), '--month', '0050-03', '--out', join(trail.dir, 'early')],
      {},
      {
        out: (l) => out.push(l),
        err: (l) => err.push(l),
      },
    );
    expect({ code, err, rowsLine: out[0] }).toEqual({
      code: 0,
      err: [],
      rowsLine: expect.stringMatching(/ rows \(1 of 0050-03\), seals /) as unknown,
    });
  }, 120_000);
});
