import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { type Repository } from 'typeorm';
import { AuditEntryNormalizer, type AuditRecord } from './audit-entry';
import { type AuditLog } from './audit-log.entity';
import { AUDIT_DEFAULTS } from './audit-options';
import { AuditWriteQueue, type PendingEntry } from './audit-write-queue';
import { AuditWriter } from './audit.writer';
import { BoundedPoolQuery, type PgClient, type PgPool } from './bounded-pool-query';

// A write whose answer came while the event loop was blocked past its deadline (a long synchronous
// task of the app) is taken as answered, as the disk's deadlines do (stall-tolerant-deadline.ts):
// the writer's bound, the pool query's and the write queue's deadline of a batch being split.
// Each answer waits on a real thread-pool call, made just before the loop blocks, from a
// setImmediate callback: after it the loop reaches its timers (now due) before the poll phase
// that delivers the answer, as after any stall.
const TIMEOUT_MS = 100;
const STALL_MS = 400;

const normalizer = new AuditEntryNormalizer(AUDIT_DEFAULTS.redactKeys, AUDIT_DEFAULTS.maxEntryBytes);
const record = (n: number): AuditRecord => normalizer.normalize({ action: 'nda_created', entityType: 'NDA', entityId: `nda-${n}` }).record;

function blockLoop(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

/** A real I/O answer, made before a stall of the loop longer than the deadline. */
function answeredDuringStall<T>(value: T): Promise<T> {
  const answer = stat(tmpdir()).then(() => value);
  blockLoop(STALL_MS);
  return answer;
}

const inCheckPhase = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('write deadlines after a stall of the event loop', () => {
  it('AuditWriter: a batch answered while the loop was blocked past writeTimeoutMs is committed, not timed out', async () => {
    const repository = {
      metadata: { tablePath: 'audit_log' },
      manager: { query: () => answeredDuringStall([]) },
    } as unknown as Repository<AuditLog>;
    const writer = new AuditWriter(repository, TIMEOUT_MS);
    await inCheckPhase();
    await expect(writer.insert([record(1)])).resolves.toBeUndefined();
  });

  it('BoundedPoolQuery: the query answered during the stall resolves, and its connection goes back to the pool whole', async () => {
    const released: unknown[] = [];
    let destroyed = false;
    const client = {
      query: () => answeredDuringStall({ rowCount: 1 }),
      release: (error?: Error) => void released.push(error),
      on: () => undefined,
      once: () => undefined,
      removeListener: () => undefined,
      connection: { stream: { destroy: () => void (destroyed = true) } },
    } as unknown as PgClient;
    const pool = { connect: () => Promise.resolve(client) } as unknown as PgPool;
    const timeout = () => Object.assign(new Error('audit write not committed within 100 ms'), { code: 'AUDIT_WRITE_TIMEOUT' });
    await inCheckPhase();
    await expect(new BoundedPoolQuery(4, 5000).run(pool, () => 'INSERT 1', TIMEOUT_MS, timeout)).resolves.toEqual({ rowCount: 1 });
    expect({ released, destroyed }).toEqual({ released: [undefined], destroyed: false });
  });

  it('AuditWriteQueue: a split batch whose split ended during the stall is not reported overdue', async () => {
    const overdue: PendingEntry[][] = [];
    let settled = 0;
    const queue = new AuditWriteQueue(
      (_records, _deadline, splitting) => {
        splitting();
        return answeredDuringStall(undefined);
      },
      { batchSize: 10, maxEntries: 10, maxBytes: 1 << 20, timeoutMs: TIMEOUT_MS },
      () => true,
      () => undefined,
      (batch) => void overdue.push(batch),
    );
    await inCheckPhase();
    queue.push({ record: record(1), bytes: 100, seq: 1, deadline: Date.now() + TIMEOUT_MS, settle: () => void (settled += 1) });
    await queue.flush();
    await inCheckPhase();
    expect({ settled, overdue: overdue.length }).toEqual({ settled: 1, overdue: 0 });
  });
});
