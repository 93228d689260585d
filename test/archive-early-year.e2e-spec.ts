import { join } from 'node:path';
import { AuditSealer, AuditService } from '../src/audit';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';

// audit-archive of a month of the years 0001 to 0099 (an `occurredAt` the module keeps as given,
// src/audit/occurred-at.ts) archives that month's sealed rows: the month's span is that year's, not
// 1900 to 1999 as `Date.UTC` reads a two-digit year (docs/LIFECYCLE.md, "Archives").
describe('audit-archive of a month before the year 100', () => {
  const database = 'archive_early_year';
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
