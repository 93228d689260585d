import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { FileSpool } from './file-spool';
import { encodeSpoolLine } from './spool-line';

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord =>
  normalizer.normalize({ action: 'nda_created', entityId: `nda-${n}`, changes: { n, pad: 'x'.repeat(900) } }).record;
const KiB = 1024;
const MAX = 64 * KiB;
const SEGMENT = 16 * KiB;

// docs/CONFIGURATION.md (spoolMaxBytes): N processes sharing a spool directory pass the bound by at
// most one segment each but one. A large batch (a ring emptied into the spool in an outage) is
// written one segment at a time, each begun on a fresh count of the others (the first after open
// too), so two processes that each spill a batch of nearly the bound do not fill the directory to
// twice it. Before, each batch was packed against the room under maxBytes alone, and
// the count made at open served the first segment.
describe('FileSpool: spoolMaxBytes shared by two processes that each append one large batch', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'spool-bound-batch-')), 'audit');
    await mkdir(dir, { recursive: true });
  });
  afterEach(() => rm(join(dir, '..'), { recursive: true, force: true }));

  const onDisk = async () => {
    let bytes = 0;
    for (const name of await readdir(dir)) if (name.endsWith('.ndjson')) bytes += (await stat(join(dir, name))).size;
    return bytes;
  };

  it('the directory passes spoolMaxBytes by at most one segment', async () => {
    const a = await FileSpool.open(dir, { maxBytes: MAX, segmentBytes: SEGMENT });
    const b = await FileSpool.open(dir, { maxBytes: MAX, segmentBytes: SEGMENT });
    try {
      const batch = (from: number) => Array.from({ length: 50 }, (_, i) => record(from + i));
      expect(Buffer.byteLength(encodeSpoolLine(record(0))) * 50).toBeLessThan(MAX);
      await a.append(batch(0));
      await b.append(batch(100));
      expect(await onDisk()).toBeLessThanOrEqual(MAX + SEGMENT);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
