import { mkdir, mkdtemp, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { FileSpool } from './file-spool';
import { nodeSpoolFiles, type SpoolFiles } from './spool-files';
import { encodeSpoolLine } from './spool-line';

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord => {
  const id = String(n).padStart(5, '0');
  return normalizer.normalize({ action: 'nda_created', entityId: `nda-${id}`, changes: { id, pad: 'x'.repeat(900) } }).record;
};
const KiB = 1024;

/** A promise and the function that settles it. */
const signal = () => {
  let fire = () => undefined as void;
  const fired = new Promise<void>((resolve) => (fire = resolve));
  return { fire, fired };
};

// src/audit/spool/file-spool.ts: "`maxBytes` bounds the directory: this process's segments … and
// every other owner's … no segment is begun without such a count"; docs/CONFIGURATION.md
// (`spoolMaxBytes`): N processes may pass it "by one segment each but one", what each wrote since
// another last counted it. Here the other process wrote its segment before this one opened (so it
// was counted) and then closed: nothing was written since, so the bound must hold exactly. The count
// made before a new segment lists that segment, then the heartbeat's adoption renames it to this
// owner before it is measured: the count skips it (vanished, then listed under this owner's name), and
// the adoption has not yet added it to this owner's segments, so the new segment is planned as if it
// were not there.
describe('probe: the count before a new segment, racing the heartbeat adoption', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'spool-probe-')), 'audit');
    await mkdir(dir, { recursive: true });
  });
  afterEach(() => rm(join(dir, '..'), { recursive: true, force: true }));

  it('still counts a segment adopted between the listing and its measure', async () => {
    const other = '0000000000dd';
    await writeFile(
      join(dir, `${other}.owner`),
      JSON.stringify({ id: other, hostname: 'other-host', pid: 1, pidNamespace: null, heartbeatAt: Date.now() }),
    );
    const theirs = `audit-${String(Date.now()).padStart(13, '0')}-000000-${other}.ndjson`;
    await writeFile(join(dir, theirs), Array.from({ length: 40 }, (_, n) => encodeSpoolLine(record(5000 + n))).join(''));

    let armed = false;
    const renamed = signal();
    const appended = signal();
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      // The append's count measures their segment only once the adoption has renamed it.
      stat: async (path) => {
        if (armed && basename(path) === theirs) await renamed.fired;
        return nodeSpoolFiles.stat(path);
      },
      rename: async (from, to) => {
        await nodeSpoolFiles.rename(from, to);
        if (basename(from) === theirs) renamed.fire();
      },
      // The adoption measures the segment it took after the append.
      open: async (path, flags, mode) => {
        if (armed && flags === 'r' && path.endsWith('.ndjson')) await appended.fired;
        return nodeSpoolFiles.open(path, flags, mode);
      },
    };
    const spool = await FileSpool.open(dir, { maxBytes: 64 * KiB, segmentBytes: 64 * KiB, leaseMs: 300, files });
    // The other process closes: its record goes, its segment stays to be adopted at the next heartbeat.
    await unlink(join(dir, `${other}.owner`));
    armed = true;
    const result = await spool.append(Array.from({ length: 50 }, (_, n) => record(n)));
    appended.fire();

    let onDisk = 0;
    for (const file of await readdir(dir)) if (file.endsWith('.ndjson')) onDisk += (await stat(join(dir, file))).size;
    await spool.close();
    expect(result.dropped.length).toBeGreaterThan(0);
    expect(onDisk).toBeLessThanOrEqual(64 * KiB);
  });
});
