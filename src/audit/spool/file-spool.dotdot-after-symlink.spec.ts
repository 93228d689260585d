// docs/CONFIGURATION.md, `spoolDir`: the spool's directory is the one the path names as the kernel
// reads it, and it is known by its real path (src/audit/spool/directory-ledger.ts). A `..` after a
// symbolic link is the parent of the link's target: `<root>/link/../audit`, `link` pointing at
// `<root>/real/deep`, is `<root>/real/audit`, where `mkdir` makes it. The spool's lease and
// segments, its account of the directory, and the quarantine's files are all there, not in
// `<root>/audit` (where the path's letters, read by `path.join()`, would put them).
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { AuditQuarantine } from '../quarantine/audit-quarantine';
import { type AuditReporter, ConsoleSink } from '../sinks';
import { FileSpool } from './file-spool';

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord => {
  const id = String(n).padStart(5, '0');
  return normalizer.normalize({ action: 'nda_created', entityId: `nda-${id}`, changes: { id, pad: 'x'.repeat(900) } }).record;
};
const KiB = 1024;
const reporter = {
  writeFailed: () => undefined,
  recovered: () => undefined,
  entriesDropped: () => undefined,
  entriesQuarantined: () => undefined,
} satisfies AuditReporter;

describe('a spool directory named through `link/..`', () => {
  let root: string;
  let viaLink: string;
  const spools: FileSpool[] = [];
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'spool-dotdot-'));
    await mkdir(join(root, 'real', 'deep'), { recursive: true });
    await symlink(join(root, 'real', 'deep'), join(root, 'link'));
    // Not join(): it would drop `link/..` by its letters, as the kernel does not.
    viaLink = `${root}/link/../audit`;
  });
  afterEach(async () => {
    for (const spool of spools.splice(0)) await spool.close();
    await rm(root, { recursive: true, force: true });
  });

  it('opens, and keeps its lease and segments in the directory the path names', async () => {
    const spool = await FileSpool.open(viaLink, { maxBytes: 64 * KiB, segmentBytes: 64 * KiB, leaseMs: 60_000 });
    spools.push(spool);
    await spool.append([record(1)]);
    const names = await readdir(join(root, 'real', 'audit'));
    expect(names.filter((name) => name.endsWith('.ndjson'))).toHaveLength(1);
    expect(names.filter((name) => name.endsWith('.owner'))).toHaveLength(1);
    expect(await readdir(root)).not.toContain('audit');
  });

  it('has the quarantine write its file there too', async () => {
    const spool = await FileSpool.open(viaLink, { maxBytes: 64 * KiB, segmentBytes: 64 * KiB, leaseMs: 60_000 });
    spools.push(spool);
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const quarantine = new AuditQuarantine(viaLink, new ConsoleSink(), reporter, [], { maxBytes: 64 * KiB, segmentBytes: 64 * KiB });
      const refused = { record: record(2), error: Object.assign(new Error('value too long'), { code: '22001' }) };
      const { file } = await quarantine.put([refused]);
      expect(file).toEqual(expect.stringContaining(join(root, 'real', 'audit', 'quarantine')));
      expect(await readdir(join(root, 'real', 'audit', 'quarantine'))).toHaveLength(1);
      expect(await readdir(root)).not.toContain('audit');
    } finally {
      stderr.mockRestore();
    }
  });
});
