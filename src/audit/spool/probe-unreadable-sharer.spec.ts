import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { FileSpool } from './file-spool';
import { nodeSpoolFiles, type SpoolFiles } from './spool-files';
import { encodeSpoolLine } from './spool-line';

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord => normalizer.normalize({ action: 'nda_created', entityId: `nda-${n}` }).record;

// Probe (attacker A6): since spoolMaxBytes counts the other processes' segments, the spool opens
// each of them to measure it, and a count that fails refuses every entry of the append that needed
// it (a new segment). One segment this process may not open (left by a process of another user:
// root running a one-off replay or the app in the same directory, EACCES) now makes the spool
// refuse every append, although the disk has room and the spool's own files are fine; before the
// shared bound, other owners' files were never opened on the write path. The EACCES is injected
// through the files seam (the tests run as root, which no file mode stops).
describe('probe: a sharer segment this process may not read', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'probe-spool-eacces-')), 'audit');
    await mkdir(dir, { recursive: true });
  });
  afterEach(() => rm(join(dir, '..'), { recursive: true, force: true }));

  it('appends are still kept (the bound counts what it can measure)', async () => {
    const owner = '0000000000bb';
    await writeFile(
      join(dir, `${owner}.owner`),
      JSON.stringify({ id: owner, hostname: 'other-host', pid: 1, pidNamespace: null, heartbeatAt: Date.now() }),
    );
    const theirs = join(dir, `audit-${String(Date.now()).padStart(13, '0')}-000000-${owner}.ndjson`);
    await writeFile(theirs, encodeSpoolLine(record(0)));
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      open: (path, flags, mode) =>
        path === theirs
          ? Promise.reject(Object.assign(new Error(`EACCES: permission denied, open '${path}'`), { code: 'EACCES' }))
          : nodeSpoolFiles.open(path, flags, mode),
    };
    const spool = await FileSpool.open(dir, { maxBytes: 1024 * 1024, segmentBytes: 64 * 1024, files });
    try {
      const result = await spool.append([record(1)]);
      expect({ kept: result.kept.length, error: result.error ?? null }).toEqual({ kept: 1, error: null });
    } finally {
      await spool.close();
    }
  });
});
