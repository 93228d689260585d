import { mkdir, mkdtemp, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { type SpoolRejection } from './audit-spool';
import { FileSpool } from './file-spool';
import { nodeSpoolFiles, type SpoolFiles } from './spool-files';
import { encodeSpoolLine } from './spool-line';

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord => {
  const id = String(n).padStart(5, '0');
  return normalizer.normalize({ action: 'nda_created', entityId: `nda-${id}`, changes: { id, pad: 'x'.repeat(900) } }).record;
};
const KiB = 1024;

// docs/CONFIGURATION.md, `spoolMaxBytes`: "total size of the spool directory, however many
// processes share it: each counts the others' segments too (one it cannot measure as a full
// segment …)". A gone process's segment is adopted (renamed to this owner) and then measured by
// reading it; when that read fails (EMFILE, EACCES, a disk deadline) the adopted segment is set to
// 0 bytes and is never counted again, neither as this process's nor as another's.
describe('probe: an adopted segment that cannot be measured still counts against spoolMaxBytes', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'spool-probe-')), 'audit');
    await mkdir(dir, { recursive: true });
  });
  afterEach(() => rm(join(dir, '..'), { recursive: true, force: true }));

  it('keeps the directory within spoolMaxBytes after adopting a segment whose measure failed', async () => {
    const gone = '0000000000bb';
    await writeFile(
      join(dir, `${gone}.owner`),
      JSON.stringify({ id: gone, hostname: 'other-host', pid: 1, pidNamespace: null, heartbeatAt: Date.now() - 600_000 }),
    );
    const name = `audit-${String(Date.now()).padStart(13, '0')}-000000-${gone}.ndjson`;
    await writeFile(join(dir, name), Array.from({ length: 40 }, (_, n) => encodeSpoolLine(record(5000 + n))).join(''));
    let failedOnce = false;
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      open: (path, flags, mode) => {
        // The first read of a segment (the adoption's measure) meets EMFILE; every later call works.
        if (!failedOnce && flags === 'r' && path.endsWith('.ndjson')) {
          failedOnce = true;
          return Promise.reject(Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' }));
        }
        return nodeSpoolFiles.open(path, flags, mode);
      },
    };
    const spool = await FileSpool.open(dir, { maxBytes: 64 * KiB, segmentBytes: 64 * KiB, leaseMs: 60_000, files });
    expect(failedOnce).toBe(true);
    for (let n = 0; n < 200; n += 1) if ((await spool.append([record(n)])).dropped.length > 0) break;

    let onDisk = 0;
    for (const file of await readdir(dir)) if (file.endsWith('.ndjson')) onDisk += (await stat(join(dir, file))).size;
    await spool.close();
    expect(onDisk).toBeLessThanOrEqual(64 * KiB);
  });
  // docs/FAILURES.md: "a spool segment vanishes … each of its lines not yet replayed is counted and
  // reported once (`audit.dropped`, `reason: "spool_segment_missing"`)". The adopted segment whose
  // measure failed is known as 0 lines, so its 40 entries vanish without one report.
  it('reports every line of an adopted segment whose measure failed when it vanishes before replay', async () => {
    const gone = '0000000000cc';
    await writeFile(
      join(dir, `${gone}.owner`),
      JSON.stringify({ id: gone, hostname: 'other-host', pid: 1, pidNamespace: null, heartbeatAt: Date.now() - 600_000 }),
    );
    const name = `audit-${String(Date.now()).padStart(13, '0')}-000000-${gone}.ndjson`;
    await writeFile(join(dir, name), Array.from({ length: 40 }, (_, n) => encodeSpoolLine(record(6000 + n))).join(''));
    let failedOnce = false;
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      open: (path, flags, mode) => {
        if (!failedOnce && flags === 'r' && path.endsWith('.ndjson')) {
          failedOnce = true;
          return Promise.reject(Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' }));
        }
        return nodeSpoolFiles.open(path, flags, mode);
      },
    };
    const spool = await FileSpool.open(dir, { maxBytes: 1024 * KiB, segmentBytes: 64 * KiB, leaseMs: 60_000, files });
    expect(failedOnce).toBe(true);
    const adopted = (await readdir(dir)).filter((file) => file.endsWith('.ndjson'));
    expect(adopted).toHaveLength(1);
    await unlink(join(dir, adopted[0]));

    const rejected: SpoolRejection[] = [];
    const inserted = await spool.replay(
      () => Promise.resolve(),
      500,
      (rejection) => rejected.push(rejection),
    );
    await spool.close();
    expect(inserted).toBe(0);
    expect(rejected.map((r) => r.reason)).toEqual(Array.from({ length: 40 }, () => 'segment_missing'));
  });
});
