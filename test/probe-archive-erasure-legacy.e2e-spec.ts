import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';
import { verify } from './support/integrity';
import { monthsAgo } from './support/past-months';

// Promise (docs/PRIVACY.md "Erasure inside archives"; CHANGELOG Added): `audit-erase --archive-dir DIR`
// erases the subject's rows "in every archive pair in DIR", and `audit-verify --archive --entry-key`
// counts the archive's erased rows against the entry; the legacy partition's archive
// (`audit-legacy..YYYY-MM.*`) "is checked as a month's".
//
// Attack: erase a subject whose rows are only in the legacy partition's archive (the partition removed
// by `audit-retention --legacy --archive-dir`), then check that archive offline.
describe('probe: erasure inside the legacy partition archive', () => {
  const database = 'probe_archive_erasure_legacy';
  const trail = new ArchiveErasureTrail(database);
  const { log } = trail;
  const legacyName = `legacy..${monthsAgo(4).month}`;
  const legacySeals = () => join(trail.archives, `audit-${legacyName}.seals.json`);
  /** The legacy removal's audit.retained line, for the witness. */
  const retained: string[] = [];

  beforeAll(async () => {
    await trail.start(async () => {
      await log(4, 1, 'u-old');
      await log(4, 2, 'u-keep');
      await log(2, 1, 'u-1');
      await log(1, 1, 'u-2');
    });
    const out: string[] = [];
    const code = await runRetention(
      ['--url', trail.url(), '--signing-key', join(trail.dir, 'seal.key'), '--months', '1', '--legacy', '--archive-dir', trail.archives],
      {},
      { out: (line) => out.push(line), err: (line) => (line.includes('"event":"audit.retained"') ? retained.push(line) : out.push(line)) },
    );
    if (code !== 0) throw new Error(`audit-retention --legacy exited ${code}:\n${out.join('\n')}`);
  }, 240_000);

  afterAll(async () => {
    await trail.stop();
  });

  it("erases the subject's rows in the legacy archive, which then verifies clean", async () => {
    const erased = await trail.erase(['--user', 'u-old']);
    const rows = gunzipSync(readFileSync(join(trail.archives, `audit-${legacyName}.ndjson.gz`)))
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as (string | null)[]);
    const witness = trail.witness();
    appendFileSync(witness, retained.map((line) => `${line}\n`).join(''));
    const checked = await verify(
      '',
      '--archive',
      legacySeals(),
      '--witness',
      witness,
      '--public-key',
      join(trail.dir, 'seal.pub'),
      '--entry-key',
      trail.entryKey,
    );
    expect({
      erased: erased.code,
      actors: rows
        .filter((row) => row[5]?.startsWith('nda-4-'))
        .map((row) => row[6])
        .sort(),
      verified: checked.code,
      anomalies: checked.anomalies,
    }).toEqual({ erased: 0, actors: ['[ERASED]', 'u-keep'], verified: 0, anomalies: [] });
  }, 180_000);
});
