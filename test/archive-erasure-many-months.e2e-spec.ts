import { join } from 'node:path';
import { AuditSealer, AuditService } from '../src/audit';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';
import { verify } from './support/integrity';

// docs/PRIVACY.md, "The entry counts them", and docs/LIFECYCLE.md, "What the offline check proves
// of an erased archive": the erasure entry records the rows its erasure erased by month of their
// `occurred_at` (`changes.erasure.months`), and each erasure is recorded by an entry that counts
// its rows, else `row_erased_unaccounted`. The entry is never cut to fit `maxEntryBytes`: a
// subject with rows in thousands of months (one key each) is erased, by `audit-erase` and by
// `erase()` (the app's default 64 KiB cap), and the trail verifies clean.
describe('an erasure of a subject with rows in thousands of months', () => {
  const trail = new ArchiveErasureTrail('manymonths');
  const { erase, log } = trail;
  const MONTHS = 6_000;

  beforeAll(async () => {
    await trail.start(async () => {
      await log(2, 1, 'u-1');
    });
    for (const user of ['u-9', 'u-8']) {
      for (let k = 4; k < 4 + MONTHS; k += 500) {
        await Promise.all(Array.from({ length: 500 }, (_, i) => log(k + i, 1, user)));
      }
    }
    await trail.app.get(AuditSealer).sealNow();
  }, 300_000);

  afterAll(() => trail.stop());

  it('records every month in its entry, and the trail verifies clean, erased by audit-erase and by erase()', async () => {
    const result = await erase(['--user', 'u-9']);
    expect({ code: result.code, erased: result.out.some((l) => l.startsWith(`audit-erase: ${MONTHS} rows erased`)) }).toEqual({
      code: 0,
      erased: true,
    });
    const fromApp = await trail.app.get(AuditService).erase({ userId: 'u-8', requestedBy: 'dpo' });
    expect(fromApp.erased).toBe(MONTHS);
    await trail.app.get(AuditSealer).sealNow();
    const entries = await trail.db.query<{ changes: { erasure?: { rows?: number; months?: Record<string, number> } } }>(
      "SELECT changes FROM audit_log WHERE action = 'audit_erasure' ORDER BY id",
      [],
      'manymonths',
    );
    const checked = await verify(trail.url(), `--public-key=${join(trail.dir, 'seal.pub')}`, '--entry-key', trail.entryKey);
    expect({
      entries: entries.map((e) => ({ rows: e.changes.erasure?.rows, months: Object.keys(e.changes.erasure?.months ?? {}).length })),
      code: checked.code,
      anomalies: checked.out.filter((l) => l.startsWith('ANOMALY')).slice(0, 5),
    }).toEqual({
      entries: [
        { rows: MONTHS, months: MONTHS },
        { rows: MONTHS, months: MONTHS },
      ],
      code: 0,
      anomalies: [],
    });
  }, 300_000);
});
