import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { type AuditEventLine, type AuditReporter, ConsoleSink } from '../sinks';
import { decodeSpoolLine } from '../spool';
import { AuditQuarantine } from './audit-quarantine';

const normalizer = new AuditEntryNormalizer(['password'], 64 * 1024);
const record = (n: number): AuditRecord =>
  normalizer.normalize({
    action: 'nda_created',
    entityType: 'NDA',
    entityId: `e-${n}`,
    userId: 'u1',
    changes: { title: `private title ${n}` },
    metadata: { note: 'private note' },
  }).record;
const refusal = (n: number) => ({
  record: record(n),
  error: Object.assign(new Error('date/time field value out of range at db.internal:5432 for user app'), { code: '22008' }),
});

describe('AuditQuarantine', () => {
  let dir: string;
  let lines: AuditEventLine[];
  let stderr: jest.SpyInstance;
  const reporter = {
    writeFailed: jest.fn(),
    recovered: jest.fn(),
    entriesDropped: jest.fn(),
    entriesQuarantined: jest.fn(),
  } satisfies AuditReporter;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'audit-quarantine-'));
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

  it('with a spoolDir: fsyncs spool-format lines to a 0600 file under quarantine/, one line and one report per put', async () => {
    const quarantine = new AuditQuarantine(dir, new ConsoleSink(), reporter, ['app']);
    const refused = [refusal(1), refusal(2)];
    const result = await quarantine.put(refused);

    const [name] = await readdir(join(dir, 'quarantine'));
    const file = join(dir, 'quarantine', name);
    expect(result).toEqual({ quarantined: 2, file });
    expect(name).toMatch(/^quarantine-\d{13}-\d+\.ndjson$/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const text = await readFile(file, 'utf8');
    const decoded = text.trimEnd().split('\n').map(decodeSpoolLine);
    expect(decoded).toEqual(refused.map(({ record }) => ({ record })));
    const error = { code: '22008', message: 'date/time field value out of range at [host] for user [redacted]' };
    expect(JSON.parse(text.split('\n')[0])).toMatchObject({ quarantine: { at: expect.any(String), error } });

    expect(lines).toEqual(
      refused.map(({ record }, i) => ({
        timestamp: expect.any(String),
        level: 'error',
        event: 'audit.quarantined',
        auditId: record.id,
        action: 'nda_created',
        entityType: 'NDA',
        entityId: record.entityId,
        userId: 'u1',
        error,
        file,
        quarantined: i + 1,
        entry: record,
      })),
    );
    expect(reporter.entriesQuarantined).toHaveBeenCalledTimes(1);
    expect(reporter.entriesQuarantined).toHaveBeenCalledWith({
      count: 2,
      auditId: refused[0].record.id,
      action: 'nda_created',
      entityType: 'NDA',
      error,
      file,
    });
    expect(JSON.stringify(reporter.entriesQuarantined.mock.calls)).not.toContain('private');
    expect(quarantine.count).toBe(2);
  });

  it('appends later and concurrent puts to the same file, whole lines only', async () => {
    const quarantine = new AuditQuarantine(dir, new ConsoleSink(), reporter);
    await Promise.all([quarantine.put([refusal(1)]), quarantine.put([refusal(2), refusal(3)]), quarantine.put([refusal(4)])]);
    await quarantine.put([refusal(5)]);
    const names = await readdir(join(dir, 'quarantine'));
    expect(names).toHaveLength(1);
    const decoded = (await readFile(join(dir, 'quarantine', names[0]), 'utf8')).trimEnd().split('\n').map(decodeSpoolLine);
    expect(decoded.map((d) => ('record' in d ? d.record.entityId : d.rejected))).toEqual(['e-1', 'e-2', 'e-3', 'e-4', 'e-5']);
    expect(quarantine.count).toBe(5);
    expect(reporter.entriesQuarantined).toHaveBeenCalledTimes(4);
  });

  it('without a spoolDir: the stderr line carries the full entry, and no file is written', async () => {
    const quarantine = new AuditQuarantine(null, new ConsoleSink(), reporter);
    const refused = [refusal(1)];
    await expect(quarantine.put(refused)).resolves.toEqual({ quarantined: 1, file: null });
    expect(lines).toEqual([expect.objectContaining({ event: 'audit.quarantined', file: null, entry: refused[0].record })]);
    expect(await readdir(dir)).toEqual([]);
    expect(reporter.entriesQuarantined).toHaveBeenCalledWith(expect.objectContaining({ count: 1, file: null }));
  });

  it('never rejects: a disk that refuses the file, or a throwing reporter, still leaves the stderr line and the count', async () => {
    const notADir = join(dir, 'plain-file');
    await writeFile(notADir, 'x');
    reporter.entriesQuarantined.mockImplementationOnce(() => {
      throw new Error('pager down');
    });
    const quarantine = new AuditQuarantine(notADir, new ConsoleSink(), reporter);
    const refused = [refusal(1)];
    await expect(quarantine.put(refused)).resolves.toEqual({ quarantined: 1, file: null });
    expect(lines).toEqual([
      expect.objectContaining({
        event: 'audit.quarantined',
        file: null,
        fileError: expect.stringMatching(/^quarantine_file_error: /),
        entry: refused[0].record,
      }),
    ]);
    expect(quarantine.count).toBe(1);
  });

  it('does nothing for nothing refused', async () => {
    const quarantine = new AuditQuarantine(dir, new ConsoleSink(), reporter);
    await expect(quarantine.put([])).resolves.toEqual({ quarantined: 0, file: null });
    expect(lines).toEqual([]);
    expect(reporter.entriesQuarantined).not.toHaveBeenCalled();
    expect(await readdir(dir)).toEqual([]);
  });
});
