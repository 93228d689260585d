import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { type ArchiveFiles, boundedArchiveFiles } from '../src/audit/lifecycle/archive-files';
import { ArchiveErasureTrail } from './support/archive-erasure-trail';

// Two `audit-erase --archive-dir` runs on the same archive at once (docs/LIFECYCLE.md, "Archives
// and erasure"): one holds the archive's lock while it rewrites it, the other fails at once with
// AUDIT_ARCHIVE_LOCKED, its rows file as it was and the archive verifying; running that erasure
// again finishes it. A lock left by a killed run is named as such and stays until removed.
describe('two archive erasures at once', () => {
  const trail = new ArchiveErasureTrail('archeraseconc');
  const { month, erase, log, rowsOf, sealsOf, rowsText, verifyArchive } = trail;

  beforeAll(async () => {
    await trail.start(async () => {
      await log(2, 1, 'u-7');
      await log(2, 2, 'u-8');
      await log(2, 3, 'u-2');
    });
  }, 180_000);

  afterAll(() => trail.stop());

  it('a run that overlaps another fails as locked, leaves an archive that verifies, and once rerun both subjects are erased', async () => {
    // Run A (u-7) is held just before it writes its seals file, while run B (u-8) runs from start to end.
    let reached: () => void = () => undefined;
    const atSeals = new Promise<void>((resolve) => (reached = resolve));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const held = (d: string, ms: number): ArchiveFiles => {
      const files = boundedArchiveFiles(d, ms);
      return {
        ...files,
        writeFile: async (path, text) => {
          reached();
          await gate;
          await files.writeFile(path, text);
        },
      };
    };
    const a = erase(['--user', 'u-7'], { files: held });
    await atSeals;
    const b = await erase(['--user', 'u-8']);
    release();
    const first = await a;
    expect({ a: first.code, aErr: first.err, b: b.code, bErr: b.err }).toEqual({
      a: 0,
      aErr: [],
      b: 1,
      bErr: [
        expect.stringMatching(
          new RegExp(
            `^archive ${month}: FAILED AUDIT_ARCHIVE_LOCKED: .*\\.seals\\.json\\.lock is held by audit-erase pid ${process.pid} .*its rows file is as it was: erase the subject again with --archive-dir`,
          ),
        ),
      ],
    });
    const between = rowsText(trail.archives);
    expect({ u7: between.includes('"u-7"'), u8: between.includes('"u-8"') }).toEqual({ u7: false, u8: true });
    const meanwhile = await verifyArchive(trail.archives);
    expect({ code: meanwhile.code, anomalies: meanwhile.anomalies }).toEqual({ code: 0, anomalies: [] });
    const again = await erase(['--user', 'u-8']);
    expect({ code: again.code, err: again.err }).toEqual({ code: 0, err: [] });
    const text = rowsText(trail.archives);
    expect({ u7: text.includes('"u-7"'), u8: text.includes('"u-8"'), u2: text.includes('"u-2"') }).toEqual({
      u7: false,
      u8: false,
      u2: true,
    });
    expect(readdirSync(trail.archives).filter((name) => !/\.(seals\.json|ndjson\.gz)$/.test(name))).toEqual([]);
    const checked = await verifyArchive(trail.archives);
    expect({ code: checked.code, anomalies: checked.anomalies }).toEqual({ code: 0, anomalies: [] });
  }, 120_000);

  it('a lock left by a killed run fails the next run, naming it as gone, until it is removed', async () => {
    const lock = `${sealsOf(trail.archives)}.lock`;
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    writeFileSync(lock, `${JSON.stringify({ pid: gone, host: hostname(), since: new Date().toISOString() })}\n`);
    const before = readFileSync(rowsOf(trail.archives));
    const stopped = await erase(['--user', 'u-2']);
    expect({ code: stopped.code, err: stopped.err }).toEqual({
      code: 1,
      err: [
        expect.stringMatching(
          new RegExp(`AUDIT_ARCHIVE_LOCKED: .*\\.lock was left by audit-erase pid ${gone} .*no longer running: remove that file`),
        ),
      ],
    });
    expect(readFileSync(rowsOf(trail.archives)).equals(before)).toBe(true);
    rmSync(lock);
    const again = await erase(['--user', 'u-2']);
    expect({ code: again.code, err: again.err, left: existsSync(lock) }).toEqual({ code: 0, err: [], left: false });
    expect(rowsText(trail.archives).includes('"u-2"')).toBe(false);
    const checked = await verifyArchive(trail.archives);
    expect({ code: checked.code, anomalies: checked.anomalies }).toEqual({ code: 0, anomalies: [] });
  }, 120_000);
});
