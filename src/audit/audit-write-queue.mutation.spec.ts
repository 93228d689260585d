import { type AuditRecord } from './audit-entry';
import { AuditWriteQueue, type PendingEntry } from './audit-write-queue';

// What the mutation run of audit-write-queue.ts left alive in the linger: a batch of exactly batchSize, and a clock set back.
const TIMEOUT_MS = 2000;

function entry(seq: number): PendingEntry {
  return { record: { id: String(seq) } as AuditRecord, bytes: 100, seq, deadline: Date.now() + TIMEOUT_MS, settle: jest.fn() };
}

function queueWith(lingerMs: number, batchSize: number) {
  const sent: number[] = [];
  const queue = new AuditWriteQueue(
    (records) => {
      sent.push(records.length);
      return new Promise<void>(() => undefined);
    },
    { batchSize, maxEntries: 10_000, maxBytes: 1 << 30, timeoutMs: TIMEOUT_MS, lingerMs },
    () => true,
    () => undefined,
  );
  return { queue, sent };
}

describe('AuditWriteQueue linger, at its edges', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('sends a batch of exactly batchSize entries at once', async () => {
    const { queue, sent } = queueWith(10, 5);
    for (let i = 0; i < 5; i++) queue.push(entry(i));
    await jest.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([5]);
  });

  it('ends the linger by its timer, even when the clock is set back meanwhile', async () => {
    const { queue, sent } = queueWith(10, 5);
    queue.push(entry(1));
    await jest.advanceTimersByTimeAsync(5);
    jest.setSystemTime(Date.now() - 60_000);
    await jest.advanceTimersByTimeAsync(5);
    expect(sent).toEqual([1]);
  });
});
