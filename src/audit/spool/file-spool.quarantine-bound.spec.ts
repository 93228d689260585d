import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { FileSpool } from './file-spool';
import { encodeSpoolLine } from './spool-line';

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord => {
  const id = String(n).padStart(5, '0');
  return normalizer.normalize({ action: 'nda_created', entityId: `nda-${id}`, changes: { id, pad: 'x'.repeat(900) } }).record;
};
const KiB = 1024;

/** Bytes of the `.ndjson` files under `dir`, one folder deep (the segments and the quarantine). */
async function bytesUnder(dir: string): Promise<number> {
  let bytes = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) bytes += await bytesUnder(path);
    else if (entry.name.endsWith('.ndjson')) bytes += (await stat(path)).size;
  }
  return bytes;
}

// docs/CONFIGURATION.md, `spoolMaxBytes`: the total size of the spool directory. The quarantine
// (`<spoolDir>/quarantine/`, entries the database refused for their content) lives in it: a flood
// of refused entries (a constraint added outside the shipped migration refuses every entry) must
// not let the spool fill the volume beyond the bound the operator sized it for. The spool counts
// the quarantine's files (any process's) like another owner's segments.
describe('FileSpool: the quarantine counts against spoolMaxBytes', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'spool-quarantine-')), 'audit');
    await mkdir(join(dir, 'quarantine'), { recursive: true });
  });
  afterEach(() => rm(join(dir, '..'), { recursive: true, force: true }));

  it('refuses appends once the segments and the quarantine files reach the bound', async () => {
    const quarantined = Array.from({ length: 40 }, (_, n) => encodeSpoolLine(record(9000 + n), { quarantine: { at: 'now' } })).join('');
    await writeFile(join(dir, 'quarantine', `quarantine-${Date.now()}-4242.ndjson`), quarantined);
    const spool = await FileSpool.open(dir, { maxBytes: 64 * KiB, segmentBytes: 64 * KiB, leaseMs: 60_000 });
    try {
      let refused = false;
      for (let n = 0; n < 200 && !refused; n += 1) refused = (await spool.append([record(n)])).error === 'spool_full';
      expect(refused).toBe(true);
      expect(await bytesUnder(dir)).toBeLessThanOrEqual(64 * KiB);
    } finally {
      await spool.close();
    }
  });
});
