import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Repository } from 'typeorm';
import { type AuditLog } from './audit-log.entity';
import { resolveAuditOptions } from './audit-options';
import { AuditService } from './audit.service';
import { RingBuffer } from './ring-buffer';
import { type AuditReporter, type ConsoleSink } from './sinks';
import { FileSpool, nodeSpoolFiles, type SpoolFiles } from './spool';

// Sync mode with a spool and the database refusing every write: the request's answer is the
// promise of log(). It must wait for the fsync of the spool segment the entry was written to, not
// just for the write: before the fsync, a power loss takes the entry with it.

/** The real file system, except that a segment's fsync waits until the test releases it. */
function heldSegmentSyncs(held: (() => void)[]) {
  const files: SpoolFiles = {
    ...nodeSpoolFiles,
    open: async (path, flags, mode) => {
      const handle = await nodeSpoolFiles.open(path, flags, mode);
      if (!path.endsWith('.ndjson')) return handle;
      return {
        write: (buffer, offset, length) => handle.write(buffer, offset, length),
        read: (buffer, offset, length, position) => handle.read(buffer, offset, length, position),
        truncate: (length) => handle.truncate(length),
        stat: () => handle.stat(),
        close: () => handle.close(),
        sync: async () => {
          await new Promise<void>((resolve) => held.push(resolve));
          await handle.sync();
        },
      };
    },
  };
  return { files };
}

const failingRepository = {
  insert: () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 10.9.8.7:5432'), { code: 'ECONNREFUSED' })),
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('AuditService in sync mode with a spool', () => {
  let dir: string;
  let service: AuditService | undefined;
  const held: (() => void)[] = [];
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'audit-fsync-'))));
  afterEach(async () => {
    // A failed test leaves its fsync held: let it go, so that shutdown need not wait it out.
    held.splice(0).forEach((release) => release());
    await service?.beforeApplicationShutdown();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers a request only once the spool segment's fsync has resolved", async () => {
    const { files } = heldSegmentSyncs(held);
    const spool = await FileSpool.open(join(dir, 'spool'), { maxBytes: 1 << 20, segmentBytes: 1 << 20, files });
    // A write timeout far above the hold below: the answer may not come from the timeout path.
    const options = resolveAuditOptions({ mode: 'sync', writeTimeoutMs: 10_000, retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 });
    const console = { emit: () => undefined } as unknown as ConsoleSink;
    const reporter: AuditReporter = {
      writeFailed: () => undefined,
      recovered: () => undefined,
      entriesDropped: () => undefined,
      entriesQuarantined: () => undefined,
    };
    const buffer = new RingBuffer<never>({ capacity: options.bufferSize, maxBytes: options.bufferMaxBytes });
    service = new AuditService(options, failingRepository as unknown as Repository<AuditLog>, buffer, spool, reporter, console);

    let answered = false;
    const logged = service.log({ action: 'nda_created', entityType: 'NDA', entityId: 'nda-1' }).then(() => (answered = true));
    for (let waited = 0; held.length === 0; waited += 5) {
      if (waited > 2000) throw new Error('the spool segment was never fsynced');
      await sleep(5);
    }
    await sleep(50);
    expect([answered, spool.entries]).toEqual([false, 0]);
    held.splice(0).forEach((release) => release());
    await logged;
    expect([answered, spool.entries]).toEqual([true, 1]);
  });
});
