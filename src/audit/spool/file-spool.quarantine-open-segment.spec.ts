import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { AuditQuarantine } from '../quarantine';
import { type AuditReporter, ConsoleSink } from '../sinks';
import { FileSpool } from './file-spool';
import { nodeSpoolFiles, type SpoolFiles } from './spool-files';
import { encodeSpoolLine } from './spool-line';

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord =>
  normalizer.normalize({
    action: 'nda_created',
    entityType: 'NDA',
    entityId: `e-${String(n).padStart(5, '0')}`,
    changes: { pad: 'x'.repeat(900) },
  }).record;
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

// docs/CONFIGURATION.md, `spoolMaxBytes`: the total size of the spool directory, quarantine
// included; N processes writing at once may pass it by one segment each but one, so one process
// alone never. Its spool and its quarantine (built with the same bound, as the module does) write
// the same directory: what one of them wrote is seen by the other's next decision, whether the
// spool has a segment open (whose room it counted before the quarantine wrote) or both write at
// once.
describe('FileSpool and AuditQuarantine of one process: one bound for the directory', () => {
  let dir: string;
  const reporter = {
    writeFailed: jest.fn(),
    recovered: jest.fn(),
    entriesDropped: jest.fn(),
    entriesQuarantined: jest.fn(),
  } satisfies AuditReporter;
  const bound = { maxBytes: 128 * KiB, segmentBytes: 64 * KiB };

  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'spool-quarantine-open-')), 'audit');
    jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await rm(join(dir, '..'), { recursive: true, force: true });
  });

  it('refuses appends to the open segment once the quarantine filled the directory', async () => {
    const spool = await FileSpool.open(dir, { ...bound, leaseMs: 60_000 });
    try {
      expect((await spool.append([record(0)])).kept).toHaveLength(1);
      // A flood of refused entries: the quarantine writes up to the bound.
      const quarantine = new AuditQuarantine(dir, new ConsoleSink(), reporter, [], { timeoutMs: 2000, ...bound });
      let file: string | null = '';
      for (let n = 1; n < 400 && file !== null; n += 1) ({ file } = await quarantine.put([refusal(n)]));
      expect(file).toBeNull();
      // The database is down now: the spool appends to the segment it has open, counted before.
      let refused = false;
      for (let n = 1000; n < 1200 && !refused; n += 1) refused = (await spool.append([record(n)])).error === 'spool_full';
      expect(refused).toBe(true);
      expect(await bytesUnder(dir)).toBeLessThanOrEqual(bound.maxBytes);
    } finally {
      await spool.close();
    }
  });

  it('lets one of an append and a put that each fit, but not both, write when they come at once', async () => {
    const scratch = join(dir, '..', 'scratch');
    const measured = await new AuditQuarantine(scratch, new ConsoleSink(), reporter).put([refusal(1)]);
    const quarantineLine = (await stat(measured.file as string)).size;
    const spoolLine = Buffer.byteLength(encodeSpoolLine(record(1)));
    // Room, beside the first segment's line, for the longer of the two lines and not for both.
    const maxBytes = spoolLine + Math.max(spoolLine, quarantineLine) + 100;
    expect(maxBytes).toBeLessThan(2 * spoolLine + quarantineLine);
    // The spool's second write, decided on its count, waits until the quarantine has had its chance.
    let release = () => undefined as void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let writing = () => undefined as void;
    const entered = new Promise<void>((resolve) => (writing = resolve));
    let writes = 0;
    const files: SpoolFiles = {
      ...nodeSpoolFiles,
      open: async (path, flags, mode) => {
        const handle = await nodeSpoolFiles.open(path, flags, mode);
        return {
          ...handle,
          write: async (buffer, offset, length) => {
            if (++writes === 2) {
              writing();
              await held;
            }
            return handle.write(buffer, offset, length);
          },
          read: (...args) => handle.read(...args),
          truncate: (length) => handle.truncate(length),
          sync: () => handle.sync(),
          stat: () => handle.stat(),
          close: () => handle.close(),
        };
      },
    };
    const spool = await FileSpool.open(dir, { maxBytes, segmentBytes: 64 * KiB, leaseMs: 60_000, files });
    try {
      expect((await spool.append([record(0)])).kept).toHaveLength(1);
      const quarantine = new AuditQuarantine(dir, new ConsoleSink(), reporter, [], { timeoutMs: 2000, maxBytes, segmentBytes: 64 * KiB });
      const appended = spool.append([record(2)]);
      await entered;
      const put = quarantine.put([refusal(3)]);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([put, new Promise((resolve) => (timer = setTimeout(resolve, 500)))]);
      clearTimeout(timer);
      release();
      const [{ kept }, { file }] = await Promise.all([appended, put]);
      expect(kept.length + (file === null ? 0 : 1)).toBe(1);
      expect(await bytesUnder(dir)).toBeLessThanOrEqual(maxBytes);
    } finally {
      release();
      await spool.close();
    }
  });
});
