import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { AuditQuarantine } from '../quarantine';
import { type AuditReporter, ConsoleSink } from '../sinks';
import { FileSpool } from './file-spool';

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord =>
  normalizer.normalize({ action: 'nda_created', entityType: 'NDA', entityId: `e-${n}`, changes: { pad: 'x'.repeat(900) } }).record;
const refusal = (n: number) => ({ record: record(n), error: Object.assign(new Error('value too long'), { code: '22001' }) });
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

// docs/CONFIGURATION.md, `spoolMaxBytes`: "total size of the spool directory, quarantine included,
// shared or not [...] so N processes writing at once may pass it by one segment each but one": one
// process alone, its spool and its quarantine (built with the same bound, as the module does), never.
describe('probe: one process, its quarantine filled while its spool has a segment open', () => {
  let dir: string;
  let stderr: jest.SpyInstance;
  const reporter = {
    writeFailed: jest.fn(),
    recovered: jest.fn(),
    entriesDropped: jest.fn(),
    entriesQuarantined: jest.fn(),
  } satisfies AuditReporter;
  const bound = { maxBytes: 128 * KiB, segmentBytes: 64 * KiB };

  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'probe-quarantine-spool-')), 'audit');
    stderr = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  });
  afterEach(async () => {
    stderr.mockRestore();
    await rm(join(dir, '..'), { recursive: true, force: true });
  });

  it('keeps the directory within spoolMaxBytes', async () => {
    const spool = await FileSpool.open(dir, { ...bound, leaseMs: 60_000 });
    try {
      expect((await spool.append([record(0)])).kept).toHaveLength(1);
      // A flood of refused entries: the quarantine writes up to the bound, by a fresh count each time.
      const quarantine = new AuditQuarantine(dir, new ConsoleSink(), reporter, [], { timeoutMs: 2000, ...bound });
      let file: string | null = '';
      for (let n = 1; n < 400 && file !== null; n += 1) ({ file } = await quarantine.put([refusal(n)]));
      expect(file).toBeNull();
      // The database is down now: the spool appends to the segment it has open.
      let refused = false;
      for (let n = 1000; n < 1200 && !refused; n += 1) refused = (await spool.append([record(n)])).error === 'spool_full';
      expect(await bytesUnder(dir)).toBeLessThanOrEqual(bound.maxBytes);
    } finally {
      await spool.close();
    }
  });
});
