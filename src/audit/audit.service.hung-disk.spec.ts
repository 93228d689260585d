import { promises as fsp } from 'node:fs';
import { rm } from 'node:fs/promises';
import { type Repository } from 'typeorm';
import { type AuditEntry } from './audit-entry';
import { type AuditLog } from './audit-log.entity';
import { resolveAuditOptions } from './audit-options';
import { AuditService } from './audit.service';
import { RingBuffer } from './ring-buffer';
import { type AuditEventName, type AuditReporter, type ConsoleSink } from './sinks';
import { FileSpool } from './spool';
import { chainMemoryFor } from './integrity/chain-memory';
import { leftoverDir } from '../../test/support/leftovers';

// docs/FAILURES.md, the row "a spool or quarantine file operation does not return within
// writeTimeoutMs (a hung disk: open, write, fsync, read…)": "No new call reaches that disk until
// the hung one returns". The spool (`spoolDir`), the quarantine (`<spoolDir>/quarantine/`) and the
// chain memory (`<spoolDir>/integrity/`) live on one disk and share its one gate: a disk that hung
// the quarantine's fsync is not handed the spool's next append, nor the chain memory's read, so a
// hung disk keeps at most one of the four threads of libuv's pool (which dns.lookup for the
// database's host, crypto and every other file call share) once a call has hung.
const TIMEOUT_MS = 300;
const LIVENESS_MS = 5000;

class Table {
  readonly refused = new Set<string>();
  down = false;
  async insert(rows: AuditLog[]): Promise<void> {
    if (this.down) throw Object.assign(new Error('connect ECONNREFUSED 10.9.8.7:5432'), { code: 'ECONNREFUSED' });
    if (rows.some((row) => row.entityId !== null && this.refused.has(row.entityId))) {
      throw Object.assign(new Error('new row for relation "audit_log" violates check constraint "no_poison"'), {
        code: '23514',
        constraint: 'no_poison',
      });
    }
  }
}

const entry = (id: string): AuditEntry => ({ action: 'nda_created', entityType: 'NDA', entityId: id, userId: 'u1' });

async function settlesWithin(promise: Promise<unknown>, ms = LIVENESS_MS): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    promise.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  return settled;
}

describe('AuditService on one hung disk under spoolDir', () => {
  let dir: string;
  const held: (() => void)[] = [];
  let service: AuditService | undefined;

  beforeEach(async () => (dir = await leftoverDir('audit-disk')));

  afterEach(async () => {
    held.splice(0).forEach((release) => release());
    jest.restoreAllMocks();
    await service?.beforeApplicationShutdown();
    await rm(dir, { recursive: true, force: true });
  });

  it("hands the disk no other call, of the spool or the chain memory, once the quarantine's fsync hung; counts that call once", async () => {
    // From here on, every fsync of a file under spoolDir waits for the disk, which never answers.
    const realOpen = fsp.open.bind(fsp);
    jest.spyOn(fsp, 'open').mockImplementation(async (path, flags, mode) => {
      const handle = await realOpen(path, flags, mode);
      if (!String(path).startsWith(dir)) return handle;
      return new Proxy(handle, {
        get(target, property) {
          const value: unknown = Reflect.get(target, property, target);
          if (property === 'sync') {
            return async () => {
              await new Promise<void>((resolve) => held.push(resolve));
              return (value as () => Promise<void>).apply(target);
            };
          }
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    });
    const spool = await FileSpool.open(dir, { maxBytes: 1024 * 1024, segmentBytes: 1024 * 1024, timeoutMs: TIMEOUT_MS });
    const options = resolveAuditOptions({
      mode: 'sync',
      spoolDir: dir,
      writeTimeoutMs: TIMEOUT_MS,
      retryBackoffMs: 60_000,
      retryBackoffMaxMs: 60_000,
    });
    const table = new Table();
    const events: AuditEventName[] = [];
    const console = { emit: (event: AuditEventName) => events.push(event) } as unknown as ConsoleSink;
    const reporter = {
      writeFailed: jest.fn(),
      recovered: jest.fn(),
      entriesDropped: jest.fn(),
      entriesQuarantined: jest.fn(),
    } satisfies AuditReporter;
    const buffer = new RingBuffer<never>({ capacity: options.bufferSize, maxBytes: options.bufferMaxBytes });
    service = new AuditService(options, table as unknown as Repository<AuditLog>, buffer, spool, reporter, console);

    // A refused entry: the quarantine's fsync hangs, and is given up at its deadline.
    table.refused.add('poison-1');
    expect(await settlesWithin(service.log(entry('poison-1')))).toBe(true);
    expect(service.status()).toMatchObject({ quarantined: 1, diskTimeouts: 1 });
    expect(held).toHaveLength(1);

    // The database goes: a sync-mode entry is appended to the spool, on the same disk.
    table.down = true;
    expect(await settlesWithin(service.log(entry('nda-1')))).toBe(true);
    expect(events).toContain('audit.buffered');
    expect({ hungCalls: held.length, diskTimeouts: service.status().diskTimeouts }).toEqual({ hungCalls: 1, diskTimeouts: 1 });

    // The chain memory under the same spoolDir (as the sealer makes it) is refused the disk too.
    const trail = 'audit/audit_log';
    const memory = chainMemoryFor(trail, options);
    memory.remember(1, Buffer.alloc(32, 1));
    await expect(memory.persist()).rejects.toMatchObject({ code: 'AUDIT_DISK_TIMEOUT', stalled: true });
    expect({ hungCalls: held.length, diskTimeouts: service.status().diskTimeouts }).toEqual({ hungCalls: 1, diskTimeouts: 1 });
  });
});
