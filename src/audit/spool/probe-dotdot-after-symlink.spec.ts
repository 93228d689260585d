// Promise (src/audit/spool/directory-ledger.ts, CHANGELOG "the spool's directory by its real
// path"): a spool directory is known by its real path, "whatever the path it is reached by (a
// symbolic link, `..`, a trailing slash)"; FileSpool.open "opens (creating if needed) the spool
// directory".
// Break: the spool makes its directory with the path as given (the kernel reads `link/..` as the
// parent of the link's target), then builds its lease and segment paths with `path.join()`, and
// its ledger key with `path.resolve()`, which drop `link/..` by its letters: another directory.
// A spoolDir `<root>/link/../audit`, `link` pointing at `<root>/real/deep`, is `<root>/real/audit`
// to the kernel and `<root>/audit` to the spool.
// Observed: FileSpool.open() rejects with ENOENT on `<root>/audit/.<id>.owner.tmp` (the directory
// it made, `<root>/real/audit`, is not the one it writes into). Were `<root>/audit` to exist, the
// spool would write there, and its ledger would be that directory's, not the one the path names.
// Severity: low (a `..` after a symbolic link in a configured spoolDir is unusual; the spool then
// does not open at all).
// Fix guess: take the spool's directory as realpath() of the path as given (after mkdir), and use
// that real path for the lease, the segments and the ledger.
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { FileSpool } from './file-spool';

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord => {
  const id = String(n).padStart(5, '0');
  return normalizer.normalize({ action: 'nda_created', entityId: `nda-${id}`, changes: { id, pad: 'x'.repeat(900) } }).record;
};
const KiB = 1024;

describe('a spool directory named through `link/..`', () => {
  let root: string;
  const spools: FileSpool[] = [];
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'spool-dotdot-'));
  });
  afterEach(async () => {
    for (const spool of spools.splice(0)) await spool.close();
    await rm(root, { recursive: true, force: true });
  });

  it('opens, and keeps its segments in the directory the path names', async () => {
    await mkdir(join(root, 'real', 'deep'), { recursive: true });
    await symlink(join(root, 'real', 'deep'), join(root, 'link'));
    // Not join(): it would drop `link/..` by its letters, as the kernel does not.
    const viaLink = `${root}/link/../audit`;
    const spool = await FileSpool.open(viaLink, { maxBytes: 64 * KiB, segmentBytes: 64 * KiB, leaseMs: 60_000 });
    spools.push(spool);
    await spool.append([record(1)]);
    const segments = (await readdir(join(root, 'real', 'audit'))).filter((name) => name.endsWith('.ndjson'));
    expect(segments).toHaveLength(1);
  });
});
