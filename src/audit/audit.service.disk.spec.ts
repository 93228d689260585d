import { promises as fsp } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { type Repository } from 'typeorm';
import { type AuditEntry, AuditEntryNormalizer } from './audit-entry';
import { type AuditLog } from './audit-log.entity';
import { type AuditModuleOptions, resolveAuditOptions } from './audit-options';
import { AuditService } from './audit.service';
import { RingBuffer } from './ring-buffer';
import { type AuditEventName, type AuditReporter, type ConsoleSink } from './sinks';
import {
  type AuditSpool,
  decodeSpoolLine,
  encodeSpoolLine,
  FileSpool,
  type FileSpoolOptions,
  nodeSpoolFiles,
  type SpoolFiles,
} from './spool';
import { leftoverDir } from '../../test/support/leftovers';

// Issue 19, cases 2 and 3: what the service does when the disk refuses or never answers.
// Promise 3: nothing is lost without a count and a line, and a drop that cannot be avoided carries
// the entry. Promise 11: no disk call holds the writer, log() or shutdown beyond its deadline.

// The write timeout, and so the deadline of each file operation: long enough for a healthy call on a busy host.
const TIMEOUT_MS = 500;
const normalizer = new AuditEntryNormalizer([], 64 * 1024);
/** Far above every bound these tests expect (a few × TIMEOUT_MS), far below a hang. */
const LIVENESS_MS = 5000;

/** A repository double: fails, or refuses entity ids in `refused` for their content, else commits. */
class Table {
  readonly committed = new Set<string>();
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
    rows.forEach((row) => this.committed.add(row.entityId!));
  }
}

const services: AuditService[] = [];
const releases: (() => void)[] = [];

function setup(options: AuditModuleOptions, spool: AuditSpool | null = null) {
  const resolved = resolveAuditOptions({ writeTimeoutMs: TIMEOUT_MS, retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000, ...options });
  const table = new Table();
  const events: { event: AuditEventName; fields: Record<string, unknown> }[] = [];
  const console = {
    emit: (event: AuditEventName, _level: string, fields: Record<string, unknown>) => events.push({ event, fields }),
  } as unknown as ConsoleSink;
  const reporter = {
    writeFailed: jest.fn(),
    recovered: jest.fn(),
    entriesDropped: jest.fn(),
    entriesQuarantined: jest.fn(),
  } satisfies AuditReporter;
  const buffer = new RingBuffer<never>({ capacity: resolved.bufferSize, maxBytes: resolved.bufferMaxBytes });
  const service = new AuditService(resolved, table as unknown as Repository<AuditLog>, buffer, spool, reporter, console);
  services.push(service);
  const of = (event: AuditEventName) => events.filter((e) => e.event === event).map((e) => e.fields);
  return { service, table, of, events, reporter };
}

const entry = (id: string): AuditEntry => ({ action: 'nda_created', entityType: 'NDA', entityId: id, userId: 'u1', changes: { id } });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Whether `promise` settles within `ms`: the difference between bounded and hung, with room for a busy host. */
async function settlesWithin(promise: Promise<unknown>, ms = LIVENESS_MS): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    promise.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  return settled;
}
async function eventually(check: () => boolean, what: string): Promise<void> {
  await eventuallyAsync(async () => check(), what);
}
async function eventuallyAsync(check: () => Promise<boolean>, what: string): Promise<void> {
  for (const deadline = Date.now() + LIVENESS_MS; !(await check()); await sleep(10)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}

/**
 * Replaces `open` of `node:fs/promises` (which the spool and the quarantine call): files matching
 * `match` get a handle whose `operation` does not return until the test releases it.
 */
function hangFileOperation(match: (path: string, flags: string) => boolean, operation: 'sync' | 'write' | 'read') {
  const realOpen = fsp.open.bind(fsp);
  const held: (() => void)[] = [];
  let released = false;
  jest.spyOn(fsp, 'open').mockImplementation(async (path, flags, mode) => {
    const handle = await realOpen(path, flags, mode);
    if (!match(String(path), String(flags))) return handle;
    return new Proxy(handle, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (property === operation) {
          return async (...args: unknown[]) => {
            if (!released) await new Promise<void>((resolve) => held.push(resolve));
            return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          };
        }
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  });
  const release = () => {
    released = true;
    held.splice(0).forEach((resolve) => resolve());
  };
  releases.push(release);
  return { release, held: () => held.length };
}

/** The real file system, except that every segment write fails with `code`. */
function failingSegmentWrites(code: string): SpoolFiles {
  return {
    ...nodeSpoolFiles,
    open: async (path, flags, mode) => {
      const handle = await nodeSpoolFiles.open(path, flags, mode);
      if (flags !== 'a') return handle;
      return {
        write: () => Promise.reject(Object.assign(new Error(`${code}: injected`), { code })),
        read: (...args) => handle.read(...args),
        truncate: (length) => handle.truncate(length),
        sync: () => handle.sync(),
        stat: () => handle.stat(),
        close: () => handle.close(),
      };
    },
  };
}

let dir: string;
beforeEach(async () => (dir = await leftoverDir('audit-disk')));
afterEach(async () => {
  releases.splice(0).forEach((release) => release());
  jest.restoreAllMocks();
  await Promise.all(services.splice(0).map((service) => service.beforeApplicationShutdown()));
  await rm(dir, { recursive: true, force: true });
});

const limits = { maxBytes: 1024 * 1024, segmentBytes: 1024 * 1024 };
/** Options with the per-operation deadline of the spool's files. */
const withDeadline = (options: { maxBytes: number; segmentBytes: number; files?: SpoolFiles }): FileSpoolOptions =>
  Object.assign({ ...options }, { timeoutMs: TIMEOUT_MS });

describe('case 2: in sync mode, an entry the spool refuses', () => {
  it('goes to the ring with its audit.buffered line carrying the whole entry when the spool is full (spoolMaxBytes)', async () => {
    const spool = await FileSpool.open(join(dir, 'spool'), { maxBytes: 100, segmentBytes: 64 * 1024 });
    const { service, table, of } = setup({ mode: 'sync' }, spool);
    table.down = true;
    await service.log(entry('nda-1'));
    expect(service.status()).toMatchObject({ buffered: 1, dropped: 0, spooled: 0 });
    expect(of('audit.dropped')).toEqual([]);
    expect(of('audit.buffered')).toEqual([
      expect.objectContaining({ entityId: 'nda-1', spoolError: 'spool_full', entry: expect.objectContaining({ entityId: 'nda-1' }) }),
    ]);
    // It reaches the table with the ring's flush.
    table.down = false;
    jest.spyOn(Date, 'now').mockReturnValue(Date.now() + 3_600_000);
    await service.log(entry('nda-2'));
    await eventually(() => table.committed.has('nda-1'), 'the ring to be flushed');
  });

  it.each(['ENOSPC', 'EFBIG', 'EIO'])('goes to the ring with the whole entry on its line when a write fails with %s', async (code) => {
    const spool = await FileSpool.open(join(dir, 'spool'), { ...limits, files: failingSegmentWrites(code) });
    const { service, table, of } = setup({ mode: 'sync' }, spool);
    table.down = true;
    await service.log(entry('nda-1'));
    expect(service.status()).toMatchObject({ buffered: 1, dropped: 0 });
    expect(of('audit.dropped')).toEqual([]);
    expect(of('audit.buffered')).toEqual([
      expect.objectContaining({
        entityId: 'nda-1',
        spoolError: expect.stringContaining(code),
        entry: expect.objectContaining({ entityId: 'nda-1' }),
      }),
    ]);
  });
});

describe('case 2: a drop that cannot be avoided carries the entry', () => {
  it('an entry the ring evicts and the full spool refuses: counted, with an audit.dropped line carrying the entry', async () => {
    const spool = await FileSpool.open(join(dir, 'spool'), { maxBytes: 100, segmentBytes: 64 * 1024 });
    const { service, table, of } = setup({ bufferSize: 1 }, spool);
    table.down = true;
    await service.log(entry('nda-1'));
    await service.log(entry('nda-2'));
    await eventually(() => service.status().dropped === 1, 'the evicted entry to be dropped');
    expect(of('audit.dropped')).toEqual([
      expect.objectContaining({ entityId: 'nda-1', reason: 'spool_full', entry: expect.objectContaining({ entityId: 'nda-1' }) }),
    ]);
  });

  it('an entry logged after shutdown that the full spool refuses: counted, with an audit.dropped line carrying the entry', async () => {
    const spool = await FileSpool.open(join(dir, 'spool'), { maxBytes: 100, segmentBytes: 64 * 1024 });
    const { service, of } = setup({ mode: 'sync' }, spool);
    await service.beforeApplicationShutdown();
    await service.log(entry('late-1'));
    expect(service.status()).toMatchObject({ dropped: 1 });
    expect(of('audit.dropped')).toEqual([
      expect.objectContaining({ entityId: 'late-1', reason: 'spool_full', entry: expect.objectContaining({ entityId: 'late-1' }) }),
    ]);
  });

  it("an entry the ring evicts that another process's segments leave no room for (one shared spoolDir): as a full spool's", async () => {
    // A live process on another host shares the directory; its spooled entries fill spoolMaxBytes.
    const shared = join(dir, 'spool');
    await fsp.mkdir(shared, { recursive: true });
    const sharer = { id: '0000000000aa', hostname: 'other-host', pid: 1, pidNamespace: null, heartbeatAt: Date.now() };
    await fsp.writeFile(join(shared, `${sharer.id}.owner`), JSON.stringify(sharer));
    const theirs = [1, 2, 3].map((n) => encodeSpoolLine(normalizer.normalize(entry(`theirs-${n}`)).record)).join('');
    await fsp.writeFile(join(shared, `audit-${Date.now()}-000000-${sharer.id}.ndjson`), theirs);
    const spool = await FileSpool.open(shared, { maxBytes: Buffer.byteLength(theirs) + 100, segmentBytes: 64 * 1024, leaseMs: 60_000 });
    const { service, table, reporter, of } = setup({ bufferSize: 1 }, spool);
    table.down = true;
    await service.log(entry('nda-1'));
    await service.log(entry('nda-2'));
    await eventually(() => service.status().dropped === 1, 'the evicted entry to be dropped');
    expect(service.status()).toMatchObject({ buffered: 1, spooled: 0, dropped: 1 });
    expect(of('audit.dropped')).toEqual([
      expect.objectContaining({ entityId: 'nda-1', reason: 'spool_full', entry: expect.objectContaining({ entityId: 'nda-1' }) }),
    ]);
    expect(reporter.entriesDropped).toHaveBeenCalledWith(expect.objectContaining({ reason: 'spool_full', count: 1 }));
    expect(
      await readFile(
        join(
          shared,
          (await readdir(shared)).find((n) => n.endsWith(`${sharer.id}.ndjson`))!,
        ),
        'utf8',
      ),
    ).toBe(theirs);
  });
});

describe('case 3: a file operation that never returns', () => {
  const isSegment = (path: string, flags: string) => path.endsWith('.ndjson') && flags === 'a';

  it("quarantine fsync: the refused entry's log() settles, later entries commit, the state stays up, shutdown returns", async () => {
    const hang = hangFileOperation((path) => path.includes(`${sep}quarantine${sep}`), 'sync');
    const { service, table, of } = setup({ mode: 'sync', spoolDir: dir });
    table.refused.add('poison-1');
    expect(await settlesWithin(service.log(entry('poison-1')))).toBe(true);
    expect(await settlesWithin(Promise.all([service.log(entry('nda-1')), service.log(entry('nda-2'))]))).toBe(true);
    expect([...table.committed].sort()).toEqual(['nda-1', 'nda-2']);
    expect(service.status()).toMatchObject({ state: 'up', quarantined: 1, dropped: 0, diskTimeouts: 1 });
    expect(of('audit.quarantined')).toEqual([
      expect.objectContaining({
        entityId: 'poison-1',
        file: null,
        fileError: expect.stringContaining('AUDIT_DISK_TIMEOUT'),
        entry: expect.objectContaining({ entityId: 'poison-1' }),
      }),
    ]);

    // While that fsync still hangs, the next refused entry is not held by it either.
    table.refused.add('poison-2');
    expect(await settlesWithin(service.log(entry('poison-2')))).toBe(true);
    expect(of('audit.quarantined')[1]).toMatchObject({ entityId: 'poison-2', file: null, entry: expect.objectContaining({}) });
    expect(hang.held()).toBe(1);

    // Once it returns, later entries are filed again, in a new file; every file holds whole lines only.
    hang.release();
    jest.restoreAllMocks();
    let n = 3;
    await eventuallyAsync(async () => {
      const id = `poison-${n++}`;
      table.refused.add(id);
      await service.log(entry(id));
      return of('audit.quarantined').at(-1)?.file !== null;
    }, 'a refused entry to be filed again');
    const files = await readdir(join(dir, 'quarantine'));
    expect(files).toHaveLength(2);
    const lines = await Promise.all(
      files.map(async (name) => (await readFile(join(dir, 'quarantine', name), 'utf8')).trimEnd().split('\n')),
    );
    expect(lines.flat().map((line) => 'record' in decodeSpoolLine(line))).toEqual(lines.flat().map(() => true));
    expect(lines.flat().map((line) => (decodeSpoolLine(line) as { record: { entityId: string } }).record.entityId)).toContain('poison-1');
    expect(await settlesWithin(service.beforeApplicationShutdown())).toBe(true);
  });

  it('quarantine write: the entry is on its line in full, counted, and the writer moves on', async () => {
    hangFileOperation((path) => path.includes(`${sep}quarantine${sep}`), 'write');
    const { service, table, of } = setup({ mode: 'sync', spoolDir: dir });
    table.refused.add('poison-1');
    expect(await settlesWithin(Promise.all([service.log(entry('poison-1')), service.log(entry('nda-1'))]))).toBe(true);
    expect(await settlesWithin(service.log(entry('nda-2')))).toBe(true);
    expect([...table.committed].sort()).toEqual(['nda-1', 'nda-2']);
    // A sync caller is answered at its write deadline (from the ring) while the split still waits on the disk.
    await eventuallyAsync(async () => service.status().quarantined === 1, 'the hung quarantine write given up');
    expect(service.status()).toMatchObject({ state: 'up', quarantined: 1, diskTimeouts: 1 });
    expect(of('audit.quarantined')).toEqual([
      expect.objectContaining({ entityId: 'poison-1', file: null, entry: expect.objectContaining({ entityId: 'poison-1' }) }),
    ]);
    expect(await settlesWithin(service.beforeApplicationShutdown())).toBe(true);
  });

  it('sync-mode spool fsync: log() settles from the ring; the late fsync writes no second line and counts nothing twice', async () => {
    const hang = hangFileOperation(isSegment, 'sync');
    const spool = await FileSpool.open(join(dir, 'spool'), withDeadline(limits));
    const { service, table, of, events } = setup({ mode: 'sync' }, spool);
    table.down = true;
    expect(await settlesWithin(service.log(entry('nda-1')))).toBe(true);
    expect(service.status()).toMatchObject({ buffered: 1, dropped: 0, diskTimeouts: 1 });
    expect(of('audit.buffered')).toEqual([
      expect.objectContaining({
        entityId: 'nda-1',
        spoolError: expect.stringContaining('spool_timeout'),
        entry: expect.objectContaining({ entityId: 'nda-1' }),
      }),
    ]);
    const before = events.length;
    hang.release();
    await sleep(4 * TIMEOUT_MS);
    expect(events.slice(before)).toEqual([]);
    expect(service.status()).toMatchObject({ buffered: 1, dropped: 0, diskTimeouts: 1 });
  });

  it('async-mode eviction into a hung spool: the evicted entry is counted, with an audit.dropped line carrying it', async () => {
    hangFileOperation(isSegment, 'sync');
    const spool = await FileSpool.open(join(dir, 'spool'), withDeadline(limits));
    const { service, table, of } = setup({ bufferSize: 1 }, spool);
    table.down = true;
    await service.log(entry('nda-1'));
    await service.log(entry('nda-2'));
    await eventually(() => service.status().dropped === 1, 'the evicted entry to be counted');
    expect(service.status()).toMatchObject({ buffered: 1, dropped: 1, diskTimeouts: 1 });
    expect(of('audit.dropped')).toEqual([
      expect.objectContaining({ entityId: 'nda-1', reason: 'spool_timeout', entry: expect.objectContaining({ entityId: 'nda-1' }) }),
    ]);
  });

  it("shutdown's drain to a hung spool returns, and each entry it could not place is counted with its line", async () => {
    hangFileOperation(isSegment, 'sync');
    const spool = await FileSpool.open(join(dir, 'spool'), withDeadline(limits));
    const { service, table, of } = setup({}, spool);
    table.down = true;
    await Promise.all(['nda-1', 'nda-2', 'nda-3'].map((id) => service.log(entry(id))));
    expect(await settlesWithin(service.beforeApplicationShutdown())).toBe(true);
    expect(service.status()).toMatchObject({ dropped: 3 });
    expect(of('audit.dropped').map((f) => [f.entityId, f.reason, (f.entry as { entityId: string }).entityId])).toEqual([
      ['nda-1', 'spool_timeout', 'nda-1'],
      ['nda-2', 'spool_timeout', 'nda-2'],
      ['nda-3', 'spool_timeout', 'nda-3'],
    ]);
  });

  it('recovery reading the spool: the flush gives up (down, a line, a count) and shutdown returns', async () => {
    const path = join(dir, 'spool');
    const first = await FileSpool.open(path, limits);
    await first.append(['old-1', 'old-2'].map((id) => normalizer.normalize(entry(id)).record));
    await first.close();

    const spool = await FileSpool.open(path, withDeadline(limits));
    hangFileOperation((p, flags) => p.endsWith('.ndjson') && flags === 'r', 'read');
    const { service, table, of } = setup({ retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 }, spool);
    service.onApplicationBootstrap();
    await eventually(() => service.status().state === 'down', 'the replay to give up');
    expect(service.status()).toMatchObject({ spooled: 2, diskTimeouts: 1 });
    expect(JSON.stringify(service.status().lastError)).toContain('AUDIT_DISK_TIMEOUT');
    expect(of('audit.db_write_failed')).toHaveLength(1);
    expect(table.committed.size).toBe(0);
    expect(await settlesWithin(service.beforeApplicationShutdown())).toBe(true);
  });
});
