import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';

// Promise (docs/LIFECYCLE.md, "What the offline check proves of an erased archive"): "With
// `--entry-key`, each entry carried whole (`erasureEntries`) is judged by its entry code as the
// table's rows are (a row without a code is forged only after the chain's entry-authentication
// boundary) ... an entry whose code does not match (a count raised by hand, an entry made up) is
// `row_forged`, records nothing, and the rows erased under it are `row_erased_unaccounted`."
//
// Break: an entry made up by whoever holds the archive, with no entry code and a `tx` of null (or
// one below the boundary), is judged `legacy` (judgeEntry: no code and tx null / below the
// boundary), not forged. Nothing ties the carried entry to the chain, nor its tx to the rows it
// accounts for: the archive's rows were all written after entry authentication began, so no
// genuine entry without a code can have erased any of them. A row of a subject never erased,
// marked by hand under the made-up erasure, verifies clean with the public key, the witness and
// the entry key.
//
// Observed: exit 0, no anomaly, for both the null tx and the tx "1" variants.
// Severity: high. Entry keys were the one authenticated fact of an archive's erasure accounting;
// this voids them: any row of an archive can be erased by hand and verify clean.
// Fix guess: an entry without a code accounts for no erased row whose tx is at or after the
// boundary (nor any row whose tx is not below the entry's own tx); an entry with a null tx and
// no code, carried in `erasureEntries` (written since entries carry whole), is row_forged when
// the archive's chain has a boundary.
describe('a made-up erasure entry without an entry code, carried in an archive', () => {
  const trail = new ArchiveErasureTrail('probeuncoded');
  const { erase, log, tampered, verifyArchive } = trail;

  beforeAll(async () => {
    await trail.start(async () => {
      await log(2, 1, 'u-5');
      await log(2, 2, 'u-2');
      await log(2, 3, 'u-4');
    });
  }, 180_000);

  afterAll(() => trail.stop());

  const madeUp = (tx: string | null) => {
    const fake = randomUUID();
    return tampered(`made-up-${tx ?? 'null'}`, {
      rows: (rows) => {
        const row = rows.find((r) => r[6] === 'u-2') as (string | null)[];
        [row[6], row[8], row[16]] = ['[ERASED]', '[ERASED]', JSON.stringify({ erased: fake })];
      },
      seals: (h) => {
        const real = (h.erasureEntries as (string | null)[][])[0];
        const entry = [...real];
        entry[0] = randomUUID();
        entry[1] = tx;
        entry[11] = JSON.stringify({ erasure: { id: fake, rows: 1, months: { [trail.month]: 1 } } });
        entry[15] = null;
        (h.erasureEntries as (string | null)[][]).push(entry);
      },
    });
  };

  it('does not account for a row of a subject never erased, marked by hand (tx null or below the boundary)', async () => {
    const result = await erase(['--user', 'u-5']);
    expect(result.code).toBe(0);
    const header = JSON.parse(readFileSync(trail.sealsOf(trail.archives), 'utf8')) as { erasureEntries: unknown[] };
    expect(header.erasureEntries).toHaveLength(1);
    const genuine = await verifyArchive(trail.archives);
    expect({ code: genuine.code, anomalies: genuine.anomalies }).toEqual({ code: 0, anomalies: [] });
    const victim = (trail.archiveRows(trail.archives).find((r) => r[6] === 'u-2') as (string | null)[])[0] as string;
    const seen = [];
    for (const tx of [null, '1']) {
      const checked = await verifyArchive(madeUp(tx));
      seen.push({ tx, code: checked.code, named: checked.anomalies.some((a) => a.includes(victim) || a.includes('row_forged')) });
    }
    expect(seen).toEqual([
      { tx: null, code: 1, named: true },
      { tx: '1', code: 1, named: true },
    ]);
  }, 120_000);
});
