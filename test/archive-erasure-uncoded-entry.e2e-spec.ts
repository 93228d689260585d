import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';

// docs/LIFECYCLE.md, "What the offline check proves of an erased archive": with `--entry-key`, an
// entry carried in `erasureEntries` is judged by its entry code, and an entry made up is
// `row_forged`, records nothing, and the rows erased under it are `row_erased_unaccounted`. An
// entry without a code proves nothing of itself: it accounts only for rows written before it and
// before the chain's entry authentication began, and one without a `tx` is forged. Here every row
// of the archive was written after entry authentication began, so no entry without a code can
// account for any of them: a row of a subject never erased, marked erased by hand under an entry
// made up without a code (its `tx` null, below the boundary, or in the older shape without
// `months`), is named.
describe('an erasure entry without an entry code, carried in an archive', () => {
  const trail = new ArchiveErasureTrail('uncodedentry');
  const { erase, log, tampered, verifyArchive } = trail;

  beforeAll(async () => {
    await trail.start(async () => {
      await log(2, 1, 'u-5');
      await log(2, 2, 'u-2');
      await log(2, 3, 'u-4');
    });
  }, 180_000);

  afterAll(() => trail.stop());

  /** A copy of the erased archive, the row of `u-2` marked erased under a made-up erasure whose entry has no code. */
  const madeUp = (name: string, tx: string | null, changes: Record<string, unknown>) => {
    const fake = randomUUID();
    const entryId = randomUUID();
    const where = tampered(`made-up-${name}`, {
      rows: (rows) => {
        const row = rows.find((r) => r[6] === 'u-2') as (string | null)[];
        [row[6], row[8], row[16]] = ['[ERASED]', '[ERASED]', JSON.stringify({ erased: fake })];
      },
      seals: (h) => {
        const entry = [...(h.erasureEntries as (string | null)[][])[0]];
        entry[0] = entryId;
        entry[1] = tx;
        entry[11] = JSON.stringify({ erasure: { id: fake, ...changes } });
        entry[15] = null;
        (h.erasureEntries as (string | null)[][]).push(entry);
      },
    });
    return { where, entryId };
  };

  it('does not account for a row marked erased by hand under an entry made up without a code', async () => {
    const result = await erase(['--user', 'u-5']);
    expect(result.code).toBe(0);
    const header = JSON.parse(readFileSync(trail.sealsOf(trail.archives), 'utf8')) as { erasureEntries: unknown[] };
    expect(header.erasureEntries).toHaveLength(1);
    const genuine = await verifyArchive(trail.archives);
    expect({ code: genuine.code, anomalies: genuine.anomalies }).toEqual({ code: 0, anomalies: [] });
    const victim = (trail.archiveRows(trail.archives).find((r) => r[6] === 'u-2') as (string | null)[])[0] as string;
    const months = { rows: 1, months: { [trail.month]: 1 } };
    const seen = [];
    for (const [name, tx, changes] of [
      ['null-tx', null, months],
      ['tx-1', '1', months],
      ['older-shape', '1', { rows: 1 }],
    ] as const) {
      const { where, entryId } = madeUp(name, tx, changes);
      const checked = await verifyArchive(where);
      seen.push({
        name,
        code: checked.code,
        victimUnaccounted: checked.anomalies.some((a) => a.includes('row_erased_unaccounted') && a.includes(victim)),
        entryForged: checked.anomalies.some((a) => a.includes('row_forged') && a.includes(entryId)),
      });
    }
    expect(seen).toEqual([
      { name: 'null-tx', code: 1, victimUnaccounted: true, entryForged: true },
      { name: 'tx-1', code: 1, victimUnaccounted: true, entryForged: false },
      { name: 'older-shape', code: 1, victimUnaccounted: true, entryForged: false },
    ]);
  }, 120_000);
});
