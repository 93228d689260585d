// docs/FAILURES.md: within one process, the spool and the quarantine (and any other spool on the
// same directory) keep one account of the directory, so one process alone never passes
// `spoolMaxBytes`. The directory is known by its real path: two spools of one process on one
// directory, one opened through a symbolic link to it, share that account.
import { mkdir, mkdtemp, readdir, rm, stat, symlink } from 'node:fs/promises';
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

describe('two spools of one process on one directory, one of them through a symlink', () => {
  let root: string;
  const spools: FileSpool[] = [];
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'spool-symlink-'));
  });
  afterEach(async () => {
    for (const spool of spools.splice(0)) await spool.close();
    await rm(root, { recursive: true, force: true });
  });

  it('keeps the directory within spoolMaxBytes', async () => {
    const dir = join(root, 'audit');
    await mkdir(dir);
    const linked = join(root, 'audit-link');
    await symlink(dir, linked);
    const options = { maxBytes: 64 * KiB, segmentBytes: 64 * KiB, leaseMs: 60_000 };
    const a = await FileSpool.open(dir, options);
    const b = await FileSpool.open(linked, options);
    spools.push(a, b);
    for (let n = 0; n < 200; n += 1) await (n % 2 === 0 ? a : b).append([record(n)]);
    let bytes = 0;
    for (const name of await readdir(dir)) if (name.endsWith('.ndjson')) bytes += (await stat(join(dir, name))).size;
    expect(Math.ceil(bytes / KiB)).toBeLessThanOrEqual(64);
  });
});
