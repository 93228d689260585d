import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { type AuditEventLine, type AuditReporter, ConsoleSink } from '../sinks';
import { encodeSpoolLine } from '../spool';
import { AuditQuarantine } from './audit-quarantine';

const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const record = (n: number): AuditRecord =>
  normalizer.normalize({ action: 'nda_created', entityType: 'NDA', entityId: `e-${n}`, changes: { pad: 'x'.repeat(900) } }).record;
const refusal = (n: number) => ({ record: record(n), error: Object.assign(new Error('value too long'), { code: '22001' }) });
const KiB = 1024;

// docs/CONFIGURATION.md, `spoolMaxBytes`: the total size of the spool directory, quarantine
// included. The quarantine writes within it too: past it, a refused entry keeps its
// `audit.quarantined` line on stderr (the full entry, for a replay from the export) with `file: null`
// and `fileError: "quarantine_file_error: spool_full"`, as the spool's own entries past the bound
// keep their `audit.dropped` line.
describe('AuditQuarantine: within spoolMaxBytes', () => {
  let dir: string;
  let lines: AuditEventLine[];
  let stderr: jest.SpyInstance;
  const reporter = {
    writeFailed: jest.fn(),
    recovered: jest.fn(),
    entriesDropped: jest.fn(),
    entriesQuarantined: jest.fn(),
  } satisfies AuditReporter;
  // Built apart from the call: the bound is what the module passes (`spoolMaxBytes`, `spoolSegmentBytes`).
  const bound = { timeoutMs: 2000, maxBytes: 64 * KiB, segmentBytes: 64 * KiB };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'audit-quarantine-bound-'));
    lines = [];
    stderr = jest.spyOn(process.stderr, 'write').mockImplementation((line: unknown) => {
      lines.push(JSON.parse(String(line)) as AuditEventLine);
      return true;
    });
    jest.clearAllMocks();
  });
  afterEach(async () => {
    stderr.mockRestore();
    await rm(dir, { recursive: true, force: true });
  });

  /** A spool segment of `count` entries, as another process left it. */
  const segment = (count: number) =>
    writeFile(
      join(dir, `audit-${String(Date.now()).padStart(13, '0')}-000000-0000000000aa.ndjson`),
      Array.from({ length: count }, (_, n) => encodeSpoolLine(record(5000 + n))).join(''),
    );

  it('writes the file while the directory has room', async () => {
    await segment(10);
    const quarantine = new AuditQuarantine(dir, new ConsoleSink(), reporter, [], bound);
    const result = await quarantine.put([refusal(1)]);
    expect(result.file).toEqual(expect.stringContaining(join(dir, 'quarantine')));
    expect(lines).toEqual([expect.objectContaining({ event: 'audit.quarantined', file: result.file })]);
  });

  it('past the bound, keeps the entry on its stderr line and writes no file', async () => {
    await segment(50);
    await mkdir(join(dir, 'quarantine'));
    const quarantine = new AuditQuarantine(dir, new ConsoleSink(), reporter, [], bound);
    const refused = Array.from({ length: 20 }, (_, n) => refusal(n));
    await expect(quarantine.put(refused)).resolves.toEqual({ quarantined: 20, file: null });
    expect(lines).toEqual(
      refused.map(({ record }) =>
        expect.objectContaining({ event: 'audit.quarantined', file: null, fileError: 'quarantine_file_error: spool_full', entry: record }),
      ),
    );
    expect(await readdir(join(dir, 'quarantine'))).toEqual([]);
    expect(reporter.entriesQuarantined).toHaveBeenCalledWith(expect.objectContaining({ count: 20, file: null }));
  });
});
