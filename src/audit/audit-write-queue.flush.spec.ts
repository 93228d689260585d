import { type AuditRecord } from './audit-entry';
import { AuditWriteQueue, type PendingEntry } from './audit-write-queue';

const TIMEOUT_MS = 2000;

function entry(seq: number): PendingEntry {
  return { record: { id: String(seq) } as AuditRecord, bytes: 100, seq, deadline: Date.now() + TIMEOUT_MS, settle: jest.fn() };
}

/** A lingering queue whose inserts are recorded (ids of the batches sent) and settle when told. */
function lingering(batchSize = 50) {
  const sent: string[][] = [];
  const ends: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  const failed: string[][] = [];
  const queue = new AuditWriteQueue(
    (records) => {
      sent.push(records.map((r) => r.id));
      return new Promise<void>((resolve, reject) => ends.push({ resolve, reject }));
    },
    { batchSize, maxEntries: 10_000, maxBytes: 1 << 30, timeoutMs: TIMEOUT_MS, lingerMs: 1000 },
    () => true,
    (_error, batch) => failed.push(batch.map((p) => p.record.id)),
  );
  return { queue, sent, ends, failed };
}

describe('AuditWriteQueue flush', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('starts a lingering batch at once and resolves once it committed', async () => {
    const { queue, sent, ends } = lingering();
    const first = entry(1);
    queue.push(first);
    let done = false;
    void queue.flush().then(() => (done = true));
    await jest.advanceTimersByTimeAsync(0);
    expect([sent, done]).toEqual([[['1']], false]);
    ends[0].resolve();
    await jest.advanceTimersByTimeAsync(0);
    expect(done).toBe(true);
    expect(first.settle).toHaveBeenCalled();
  });

  it("writes every batch queued before it, beyond the writer's two lanes, and resolves once all committed", async () => {
    const { queue, sent, ends } = lingering(2);
    for (let i = 1; i <= 5; i++) queue.push(entry(i));
    let done = false;
    void queue.flush().then(() => (done = true));
    await jest.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([
      ['1', '2'],
      ['3', '4'],
    ]);
    ends[0].resolve();
    ends[1].resolve();
    await jest.advanceTimersByTimeAsync(0);
    expect([sent[2], done]).toEqual([['5'], false]);
    ends[2].resolve();
    await jest.advanceTimersByTimeAsync(0);
    expect(done).toBe(true);
  });

  it('resolves, never rejects, when a write fails: the batch goes to onFailure', async () => {
    const { queue, ends, failed } = lingering();
    queue.push(entry(1));
    const flushed = queue.flush();
    await jest.advanceTimersByTimeAsync(0);
    ends[0].reject(new Error('down'));
    await expect(flushed).resolves.toBeUndefined();
    expect(failed).toEqual([['1']]);
  });

  it('resolves at once with nothing queued or in flight', async () => {
    const { queue, sent } = lingering();
    await expect(queue.flush()).resolves.toBeUndefined();
    expect(sent).toEqual([]);
  });
});
