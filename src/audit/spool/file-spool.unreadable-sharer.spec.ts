import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { FileSpool } from './file-spool';
import { nodeSpoolFiles, type SpoolFiles } from './spool-files';
import { encodeSpoolLine } from './spool-line';

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord => normalizer.normalize({ action: 'nda_created', entityId: `nda-${n}` }).record;

// spoolMaxBytes counts the other processes' segments. They are measured by stat on the path, never
// opened, and one that cannot be measured (left by a process of another user: root running a
// one-off replay in the same directory, EACCES) counts as one full segment: it does not make the
// spool refuse every append (before, the count opened each segment and failed). The
// EACCES is injected through the files seam (the tests run as root, which no file mode stops).
describe('FileSpool: a sharer segment this process may not read', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'spool-eacces-')), 'audit');
    await mkdir(dir, { recursive: true });
  });
  afterEach(() => rm(join(dir, '..'), { recursive: true, force: true }));

  /** A live sharer on another host with one segment of one line; returns the segment's path. */
  const sharer = async () => {
    const owner = '0000000000bb';
    await writeFile(
      join(dir, `${owner}.owner`),
      JSON.stringify({ id: owner, hostname: 'other-host', pid: 1, pidNamespace: null, heartbeatAt: Date.now() }),
    );
    const theirs = join(dir, `audit-${String(Date.now()).padStart(13, '0')}-000000-${owner}.ndjson`);
    await writeFile(theirs, encodeSpoolLine(record(0)));
    return theirs;
  };
  const denied = (path: string) => Promise.reject(Object.assign(new Error(`EACCES: permission denied, '${path}'`), { code: 'EACCES' }));

  it('appends are still kept (the sharer segment is measured without opening it)', async () => {
    const theirs = await sharer();
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      open: (path, flags, mode) => (path === theirs ? denied(path) : nodeSpoolFiles.open(path, flags, mode)),
    };
    const spool = await FileSpool.open(dir, { maxBytes: 1024 * 1024, segmentBytes: 64 * 1024, files });
    try {
      const result = await spool.append([record(1)]);
      expect({ kept: result.kept.length, error: result.error ?? null }).toEqual({ kept: 1, error: null });
    } finally {
      await spool.close();
    }
  });

  it('counts a sharer segment it cannot measure as one full segment (spoolSegmentBytes)', async () => {
    const theirs = await sharer();
    const files: SpoolFiles = { ...nodeSpoolFiles, stat: (path) => (path === theirs ? denied(path) : nodeSpoolFiles.stat(path)) };
    const segmentBytes = 64 * 1024;
    const lineBytes = Buffer.byteLength(encodeSpoolLine(record(1)));
    const spool = await FileSpool.open(dir, { maxBytes: segmentBytes + lineBytes, segmentBytes, files });
    try {
      expect((await spool.append([record(1)])).kept).toHaveLength(1);
      const next = record(2);
      expect(await spool.append([next])).toEqual({ kept: [], dropped: [next], error: 'spool_full' });
    } finally {
      await spool.close();
    }
  });
});
