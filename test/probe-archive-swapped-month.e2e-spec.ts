import { copyFileSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runArchive } from '../src/audit/lifecycle/archive-command';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';
import { monthsAgo } from './support/past-months';

// Promise (docs/LIFECYCLE.md, "Archives"): "`audit-verify --archive FILE` (either file of the pair)"
// checks the archive with no database; "The month and the trail the seals file names are checked too
// (`archive_mislabelled` …)": "an archive relabelled as another month … is named"; once a month is
// retired "the archive retention wrote is the month's only copy".
//
// Break: the month is taken from inside the seals file only, never from the file's name, and the
// rows file is the one the seals file names. Replace the retired month's pair (audit-M.*, its only
// copy) by another month's seals file saved under the name audit-M.seals.json, its rows file beside it
// under its own name, and delete audit-M.ndjson.gz: `audit-verify --archive DIR/audit-M.seals.json`
// (or `DIR/audit-M.ndjson.gz`, a file that no longer exists) exits 0, CLEAN, with the witness, the
// public key and the entry key. A check of each month's archive by its file name (the natural
// scheduled job) passes while the month's only copy is gone.
//
// Observed: exit 0 and "result: CLEAN" for both paths; the first report line names the other month.
//
// Severity: medium (the offline check vouches for a month's archive that is not there; the witness
// would catch it only if the check were held to the month the caller asked for).
//
// Fix guess: when FILE is named audit-<month>.*, refuse (exit 2) or name `archive_mislabelled` a seals
// file whose `month` is not that month, and a `rowsFile` that is not the pair's own name; with
// `--witness`, hold the archive to the retention checkpoint of the month in the file name.
describe('probe: audit-verify --archive of a month whose pair was replaced by another month', () => {
  const database = 'probe_archive_swapped';
  const trail = new ArchiveErasureTrail(database);
  const { log, month } = trail;
  const live = monthsAgo(1).month;

  beforeAll(async () => {
    await trail.start(async () => {
      await log(2, 1, 'u-1');
      await log(2, 2, 'u-2');
      await log(1, 1, 'u-3');
      await log(1, 2, 'u-4');
    });
  }, 180_000);

  afterAll(async () => {
    await trail.stop();
  });

  it('does not find the retired month clean when its pair is another month', async () => {
    // The retired month's archive, as retention wrote it, verifies clean (the baseline).
    expect((await trail.verifyArchive(trail.archives)).code).toBe(0);
    const liveDir = join(trail.dir, 'live');
    const err: string[] = [];
    const archived = await runArchive(['--url', trail.url(), '--month', live, '--out', liveDir], {}, { out: () => undefined, err: (l) => err.push(l) });
    expect({ archived, err }).toEqual({ archived: 0, err: [] });

    const swapped = join(trail.dir, 'swapped');
    cpSync(trail.archives, swapped, { recursive: true });
    writeFileSync(join(swapped, `audit-${month}.seals.json`), readFileSync(join(liveDir, `audit-${live}.seals.json`)));
    copyFileSync(join(liveDir, `audit-${live}.ndjson.gz`), join(swapped, `audit-${live}.ndjson.gz`));
    rmSync(join(swapped, `audit-${month}.ndjson.gz`));

    const bySeals = await trail.verifySeals(join(swapped, `audit-${month}.seals.json`));
    const byRows = await trail.verifySeals(join(swapped, `audit-${month}.ndjson.gz`));
    const verdict = (code: number) => (code === 0 ? 'clean' : 'not clean');
    expect({
      bySeals: verdict(bySeals.code),
      byRows: verdict(byRows.code),
      said: bySeals.out.filter((l) => l.startsWith('archive: ') || l.startsWith('result')),
    }).toEqual({ bySeals: 'not clean', byRows: 'not clean', said: expect.anything() as unknown });
  }, 180_000);
});
