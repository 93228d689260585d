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

// Probe (attacker A6): docs/CONFIGURATION.md (spoolMaxBytes) and CHANGELOG promise that N processes
// sharing a spool directory "pass the bound by at most one segment each but one". A batch is packed
// against the room left under maxBytes, not against the segment's size, and the sharer counted at
// open is not counted again before the first segment: two processes that each spill one batch of
// the size of the bound (a ring emptied into the spool in an outage) fill the directory to twice it.
describe('probe: spoolMaxBytes shared by two processes that each append one large batch', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'probe-spool-bound-')), 'audit');
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
