import { join } from 'node:path';
import { AuditSealer } from '../src/audit';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';
import { verify } from './support/integrity';

// Promise (docs/LIFECYCLE.md, "What the offline check proves of an erased archive", and
// docs/PRIVACY.md "The entry counts them"): the erasure entry records, and its code covers, the
// rows its database erasure erased by month of their `occurred_at` (`changes.erasure.months`), and
// each erasure is recorded by an `audit_erasure` entry that counts its rows (else
// `row_erased_unaccounted`): a genuine `audit-erase` verifies clean.
//
// Break: `months` has one key per month the subject's rows fall in, and the entry is normalized
// with the 64 KiB cap (erase-command: `new AuditEntryNormalizer(..., 64 * 1024, ...)`). A subject
// with rows in some 6 000 months (occurredAt is the caller's, anywhere in 0001..9999) makes
// `changes` too large: it is truncated to a preview, `changes.erasure` is gone, and the erasure
// recorded for every row is recorded for none.
//
// Observed: `audit-erase` exits 0 having erased 6 000 rows; the entry's `changes` holds no
// `erasure` (rows undefined, no months); `audit-verify` of the database exits 1 and names all
// 6 000 erased rows `row_erased_unaccounted`.
// Severity: low to medium (a subject with rows in thousands of months is unusual; the effect is a
// false alarm on every one of its rows and an erasure with no readable entry).
// Fix guess: keep the entry under the cap whatever the months (months as ranges, or refuse the
// erasure before erasing with a stable error), never truncate an audit_erasure entry's `changes`.
describe('a genuine erasure of a subject with rows in thousands of months', () => {
  const trail = new ArchiveErasureTrail('probemanymonths');
  const { erase, log } = trail;
  const MONTHS = 6_000;

  beforeAll(async () => {
    await trail.start(async () => {
      await log(2, 1, 'u-1');
    });
    for (let k = 3; k < 3 + MONTHS; k += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, i) => log(k + i, 1, 'u-9')));
    }
    await trail.app.get(AuditSealer).sealNow();
  }, 300_000);

  afterAll(() => trail.stop());

  it('verifies clean in the database once erased, its entry counting its rows', async () => {
    const result = await erase(['--user', 'u-9']);
    expect({ code: result.code, erased: result.out.some((l) => l.startsWith(`audit-erase: ${MONTHS} rows erased`)) }).toEqual({
      code: 0,
      erased: true,
    });
    await trail.app.get(AuditSealer).sealNow();
    const [entry] = await trail.db.query<{ changes: { erasure?: { rows?: number; months?: Record<string, number> } } }>(
      "SELECT changes FROM audit_log WHERE action = 'audit_erasure'",
      [],
      'probemanymonths',
    );
    const checked = await verify(trail.url(), `--public-key=${join(trail.dir, 'seal.pub')}`, '--entry-key', trail.entryKey);
    expect({
      rows: entry.changes.erasure?.rows,
      months: Object.keys(entry.changes.erasure?.months ?? {}).length,
      code: checked.code,
      unaccounted: checked.anomalies.filter((a) => a.startsWith('ANOMALY row_erased_unaccounted')).length,
    }).toEqual({ rows: MONTHS, months: MONTHS, code: 0, unaccounted: 0 });
  }, 300_000);
});
