import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Repository } from 'typeorm';
import { type AuditLog } from './audit-log.entity';
import { resolveAuditOptions } from './audit-options';
import { AuditService } from './audit.service';
import { RingBuffer } from './ring-buffer';
import { type AuditEventName, type AuditReporter, type ConsoleSink } from './sinks';

// docs/CONFIGURATION.md, `spoolMaxBytes`: the total size of the spool directory, quarantine
// included. The service hands the bound to its quarantine: with the directory full, an entry the
// database refuses for its content keeps its `audit.quarantined` line (the entry in full) and is
// not written past the bound.
describe('AuditService: the quarantine writes within spoolMaxBytes', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'audit-service-quarantine-bound-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('past the bound, the refused entry is on its stderr line only', async () => {
    const MiB = 1024 * 1024;
    // Another process's spool segment fills the directory's 1 MiB.
    await writeFile(join(dir, `audit-${String(Date.now()).padStart(13, '0')}-000000-0000000000aa.ndjson`), 'x'.repeat(MiB - 100));
    const options = resolveAuditOptions({ spoolDir: dir, spoolMaxBytes: MiB, spoolSegmentBytes: 64 * 1024, mode: 'sync' });
    const refused = Object.assign(new Error('new row for relation "audit_log" violates check constraint "no_poison"'), {
      code: '23514',
      constraint: 'no_poison',
    });
    const table = {
      insert: (rows: AuditLog[]) => (rows.some((row) => row.entityId === 'poison-1') ? Promise.reject(refused) : Promise.resolve()),
    };
    const events: { event: AuditEventName; fields: Record<string, unknown> }[] = [];
    const console = { emit: (event: AuditEventName, _level: string, fields: Record<string, unknown>) => events.push({ event, fields }) };
    const reporter = {
      writeFailed: jest.fn(),
      recovered: jest.fn(),
      entriesDropped: jest.fn(),
      entriesQuarantined: jest.fn(),
    } satisfies AuditReporter;
    const buffer = new RingBuffer<never>({ capacity: options.bufferSize, maxBytes: options.bufferMaxBytes });
    const service = new AuditService(
      options,
      table as unknown as Repository<AuditLog>,
      buffer,
      null,
      reporter,
      console as unknown as ConsoleSink,
    );
    try {
      await service.log({ action: 'nda_created', entityType: 'NDA', entityId: 'poison-1', changes: { title: 'x' } });
      expect(events.filter((e) => e.event === 'audit.quarantined').map((e) => e.fields)).toEqual([
        expect.objectContaining({
          entityId: 'poison-1',
          file: null,
          fileError: 'quarantine_file_error: spool_full',
          entry: expect.objectContaining({ entityId: 'poison-1' }),
        }),
      ]);
      expect(await readdir(join(dir, 'quarantine')).catch(() => [])).toEqual([]);
    } finally {
      await service.beforeApplicationShutdown();
    }
  });
});
