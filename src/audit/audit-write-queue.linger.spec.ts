import { type AuditRecord } from './audit-entry';
import { AuditWriteQueue, type PendingEntry } from './audit-write-queue';

const TIMEOUT_MS = 2000;

function entry(seq: number): PendingEntry {
  return { record: { id: String(seq) } as AuditRecord, bytes: 100, seq, deadline: Date.now() + TIMEOUT_MS, settle: jest.fn() };
}

/** A queue whose inserts are recorded (sizes of the batches sent) and commit when told. */
function queueWith(lingerMs: number, batchSize = 50) {
  const sent: number[] = [];
  const commits: Array<() => void> = [];
  const queue = new AuditWriteQueue(
    (records) => {
      sent.push(records.length);
      return new Promise<void>((resolve) => commits.push(resolve));
    },
    { batchSize, maxEntries: 10_000, maxBytes: 1 << 30, timeoutMs: TIMEOUT_MS, lingerMs },
    () => true,
    () => undefined,
  );
  return { queue, sent, commits };
}

describe('AuditWriteQueue linger', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('without a linger sends what the turn gathered on the next turn', async () => {
    const { queue, sent } = queueWith(0);
    for (let i = 0; i < 3; i++) queue.push(entry(i));
    await jest.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([3]);
  });

  it('holds a short batch until its oldest entry has waited lingerMs, so later entries share its commit', async () => {
    const { queue, sent } = queueWith(10);
    queue.push(entry(1));
    await jest.advanceTimersByTimeAsync(4);
    queue.push(entry(2));
    await jest.advanceTimersByTimeAsync(5);
    expect(sent).toEqual([]);
    queue.push(entry(3));
    await jest.advanceTimersByTimeAsync(1);
    expect(sent).toEqual([3]);
  });

  it('sends a full batch at once; the rest, having waited its linger behind it, as soon as it commits', async () => {
    const { queue, sent, commits } = queueWith(10, 5);
    for (let i = 0; i < 7; i++) queue.push(entry(i));
    await jest.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([5]);
    await jest.advanceTimersByTimeAsync(10);
    expect(sent).toEqual([5]);
    commits[0]();
    await jest.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([5, 2]);
  });

  it('a lingering entry waits no more than lingerMs after its log(), whatever arrives later', async () => {
    const { queue, sent, commits } = queueWith(10);
    queue.push(entry(1));
    for (let t = 0; t < 9; t++) {
      await jest.advanceTimersByTimeAsync(1);
      queue.push(entry(t + 2));
    }
    await jest.advanceTimersByTimeAsync(1);
    expect(sent).toEqual([10]);
    commits[0]();
    await jest.advanceTimersByTimeAsync(0);
  });

  it('settle() sends at once, without waiting for the linger', async () => {
    const { queue, sent, commits } = queueWith(1000);
    queue.push(entry(1));
    const settled = queue.settle();
    await jest.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([1]);
    commits[0]();
    await settled;
  });

  it('takeQueued() takes the lingering entries back and leaves no timer behind', async () => {
    const { queue, sent } = queueWith(10);
    queue.push(entry(1));
    queue.push(entry(2));
    await jest.advanceTimersByTimeAsync(0);
    expect(queue.takeQueued().map((p) => p.seq)).toEqual([1, 2]);
    expect(jest.getTimerCount()).toBe(0);
    await jest.advanceTimersByTimeAsync(20);
    expect(sent).toEqual([]);
    expect(queue.pending).toBe(0);
  });
});
