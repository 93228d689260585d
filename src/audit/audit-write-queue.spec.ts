import { AuditEntryNormalizer } from './audit-entry';
import { AuditWriteQueue, BACKLOG_FULL_CODE, type PendingEntry } from './audit-write-queue';
import { WRITE_TIMEOUT_CODE } from './db-error';

// The queue alone, with a writer whose every INSERT the test settles by hand.
const normalizer = new AuditEntryNormalizer([], 64 * 1024);
const LIMITS = { batchSize: 3, maxEntries: 10, maxBytes: 1000, timeoutMs: 2000 };

interface Write {
  ids: string[];
  deadline: number;
  commit: () => void;
  fail: (error: unknown) => void;
}

function setup(limits = LIMITS) {
  const writes: Write[] = [];
  const failures: { error: unknown; ids: string[] }[] = [];
  let open = true;
  const queue = new AuditWriteQueue(
    (records, deadline) =>
      new Promise<void>((commit, fail) => writes.push({ ids: records.map((r) => r.entityId as string), deadline, commit, fail })),
    limits,
    () => open,
    (error, batch) => failures.push({ error, ids: batch.map((p) => p.record.entityId as string) }),
  );
  const settled: string[] = [];
  const entry = (n: number, { bytes = 10, deadline = Date.now() + 2000 } = {}): PendingEntry => ({
    record: normalizer.normalize({ action: 'nda_created', entityId: `e${n}` }).record,
    bytes,
    seq: n,
    deadline,
    settle: () => settled.push(`e${n}`),
  });
  return { queue, writes, failures, settled, entry, close: () => (open = false), reopen: () => (open = true) };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));
/** Lets a settled write's callbacks run, and the next turn's pump. */
const settleTurn = async () => {
  for (let i = 0; i < 3; i++) await turn();
};

describe('AuditWriteQueue', () => {
  it('writes the entries of one turn of the event loop as one batch, on the next turn', async () => {
    const { queue, writes, entry } = setup();
    queue.push(entry(1));
    queue.push(entry(2));
    expect(writes).toHaveLength(0);
    await turn();
    expect(writes.map((w) => w.ids)).toEqual([['e1', 'e2']]);
  });

  it('gathers entries logged while a write is in flight into the next batch, at most batchSize, four writes at most', async () => {
    const { queue, writes, settled, entry } = setup({ ...LIMITS, maxEntries: 20 });
    queue.push(entry(1));
    await turn();
    for (let n = 2; n <= 15; n++) queue.push(entry(n));
    await turn();
    // Each full batch waiting starts a write, up to four; the rest waits for one of them.
    expect(writes.map((w) => w.ids)).toEqual([['e1'], ['e2', 'e3', 'e4'], ['e5', 'e6', 'e7'], ['e8', 'e9', 'e10']]);
    expect(queue.pending).toBe(15);
    writes[0].commit();
    await settleTurn();
    expect(settled).toEqual(['e1']);
    expect(writes.map((w) => w.ids).slice(4)).toEqual([['e11', 'e12', 'e13']]);
    expect(queue.pending).toBe(14);
    writes.slice(1).forEach((w) => w.commit());
    await settleTurn();
    expect(writes.map((w) => w.ids).slice(5)).toEqual([['e14', 'e15']]);
    writes[5].commit();
    await settleTurn();
    expect(settled).toEqual(Array.from({ length: 15 }, (_, i) => `e${i + 1}`));
    expect(queue.pending).toBe(0);
  });

  it('fills no batch past a quarter of maxEntries when that is less than batchSize, so that four fit in the bound', async () => {
    const { queue, writes, entry } = setup({ batchSize: 500, maxEntries: 1000, maxBytes: 1e6, timeoutMs: 2000 });
    for (let n = 1; n <= 1000; n++) queue.push(entry(n));
    await turn();
    expect(writes.map((w) => w.ids.length)).toEqual([250, 250, 250, 250]);
    expect(writes.map((w) => w.ids[0])).toEqual(['e1', 'e251', 'e501', 'e751']);
  });

  it('starts no second write for less than a full batch', async () => {
    const { queue, writes, entry } = setup();
    queue.push(entry(1));
    await turn();
    queue.push(entry(2));
    queue.push(entry(3));
    await turn();
    expect(writes).toHaveLength(1);
    queue.push(entry(4));
    await turn();
    expect(writes.map((w) => w.ids)).toEqual([['e1'], ['e2', 'e3', 'e4']]);
  });

  it('refuses an entry past maxEntries or maxBytes, counting what is in flight, and takes it again once there is room', async () => {
    const { queue, writes, entry } = setup({ batchSize: 10, maxEntries: 3, maxBytes: 100, timeoutMs: 2000 });
    expect(queue.push(entry(1, { bytes: 40 }))).toBe(true);
    expect(queue.push(entry(2, { bytes: 60 }))).toBe(true);
    // Exactly maxBytes is allowed; one byte more is not.
    expect(queue.push(entry(3, { bytes: 1 }))).toBe(false);
    expect(queue.push(entry(4, { bytes: 0 }))).toBe(true);
    expect(queue.push(entry(5, { bytes: 0 }))).toBe(false);
    expect(queue.pending).toBe(3);
    await turn();
    // A quarter of maxEntries rounded up: one entry a batch.
    expect(writes.map((w) => w.ids)).toEqual([['e1'], ['e2'], ['e4']]);
    expect(queue.push(entry(6, { bytes: 0 }))).toBe(false);
    writes.forEach((w) => w.commit());
    await settleTurn();
    expect(queue.pending).toBe(0);
    expect(queue.push(entry(7, { bytes: 100 }))).toBe(true);
  });

  it('hands a failed batch to onFailure, unsettled, and frees its room', async () => {
    const { queue, writes, failures, settled, entry } = setup({ batchSize: 10, maxEntries: 8, maxBytes: 1000, timeoutMs: 2000 });
    queue.push(entry(1));
    queue.push(entry(2));
    await turn();
    const error = new Error('refused');
    writes[0].fail(error);
    await settleTurn();
    expect(failures).toEqual([{ error, ids: ['e1', 'e2'] }]);
    expect(settled).toEqual([]);
    expect(queue.pending).toBe(0);
    for (let n = 3; n <= 10; n++) expect(queue.push(entry(n))).toBe(true);
  });

  it('writes nothing while closed; takeQueued gives back what waits and frees its room', async () => {
    const { queue, writes, entry, close } = setup({ batchSize: 10, maxEntries: 2, maxBytes: 1000, timeoutMs: 2000 });
    close();
    queue.push(entry(1));
    queue.push(entry(2));
    await turn();
    expect(writes).toHaveLength(0);
    expect(queue.takeQueued().map((p) => p.record.entityId)).toEqual(['e1', 'e2']);
    expect(queue.pending).toBe(0);
    expect(queue.takeQueued()).toEqual([]);
    expect(queue.push(entry(3))).toBe(true);
  });

  it('bounds a batch by the deadline of its oldest entry, and fails it unwritten once that has passed', async () => {
    const { queue, writes, failures, entry } = setup();
    const now = Date.now();
    queue.push(entry(1, { deadline: now + 5000 }));
    queue.push(entry(2, { deadline: now + 1000 }));
    queue.push(entry(3, { deadline: now + 3000 }));
    await turn();
    expect(writes[0].deadline).toBe(now + 1000);
    writes[0].commit();
    await settleTurn();
    queue.push(entry(4, { deadline: Date.now() }));
    await settleTurn();
    expect(writes).toHaveLength(1);
    expect(failures).toEqual([{ error: expect.objectContaining({ code: WRITE_TIMEOUT_CODE }) as unknown, ids: ['e4'] }]);
    expect((failures[0].error as Error).message).toBe('audit write not committed within 2000 ms');
  });

  it('sends a batch outside the queue, counted as pending until it settles', async () => {
    const { queue, writes, settled, entry } = setup();
    const outcomes: string[] = [];
    queue.send(
      [entry(1), entry(2)],
      () => outcomes.push('committed'),
      () => outcomes.push('failed'),
    );
    expect(queue.pending).toBe(2);
    expect(writes.map((w) => w.ids)).toEqual([['e1', 'e2']]);
    writes[0].commit();
    await settleTurn();
    expect(outcomes).toEqual(['committed']);
    expect(settled).toEqual(['e1', 'e2']);
    expect(queue.pending).toBe(0);

    const error = new Error('still down');
    queue.send(
      [entry(3)],
      () => outcomes.push('committed'),
      (e) => outcomes.push(e === error ? 'failed' : 'other'),
    );
    writes[1].fail(error);
    await settleTurn();
    expect(outcomes).toEqual(['committed', 'failed']);
    expect(settled).toEqual(['e1', 'e2']);
    expect(queue.pending).toBe(0);
  });

  it('settles once nothing is queued or in flight, writing what waits', async () => {
    const { queue, writes, entry } = setup({ batchSize: 2, maxEntries: 10, maxBytes: 1000, timeoutMs: 2000 });
    for (let n = 1; n <= 5; n++) queue.push(entry(n));
    let done = false;
    const settling = queue.settle().then(() => (done = true));
    await settleTurn();
    expect(writes.map((w) => w.ids)).toEqual([
      ['e1', 'e2'],
      ['e3', 'e4'],
    ]);
    writes[0].commit();
    writes[1].commit();
    await settleTurn();
    expect(done).toBe(false);
    expect(writes.map((w) => w.ids).slice(2)).toEqual([['e5']]);
    writes[2].commit();
    await settling;
    expect(queue.pending).toBe(0);
    await expect(queue.settle()).resolves.toBeUndefined();
  });

  it('wakes once per turn of the event loop, however many entries come in it', async () => {
    const { queue, writes, entry } = setup({ batchSize: 100, maxEntries: 400, maxBytes: 10_000, timeoutMs: 2000 });
    const wake = jest.spyOn(global, 'setImmediate');
    try {
      for (let n = 1; n <= 50; n++) queue.push(entry(n));
      expect(wake).toHaveBeenCalledTimes(1);
      await turn();
      queue.push(entry(51));
      expect(wake).toHaveBeenCalledTimes(3);
    } finally {
      wake.mockRestore();
    }
    expect(writes[0].ids).toHaveLength(50);
  });

  it('keeps settling while a write sent outside the queue is in flight, even once closed', async () => {
    const { queue, writes, entry, close } = setup();
    queue.push(entry(1));
    await turn();
    let done = false;
    const settling = queue.settle().then(() => (done = true));
    queue.send(
      [entry(2)],
      () => undefined,
      () => undefined,
    );
    close();
    writes[0].fail(new Error('down'));
    await settleTurn();
    expect(done).toBe(false);
    writes[1].commit();
    await settling;
    expect(queue.pending).toBe(0);
  });

  it('names a full backlog with a stable code', () => {
    expect(BACKLOG_FULL_CODE).toBe('AUDIT_BACKLOG_FULL');
  });

  it('stops settling when the queue closes with nothing in flight, leaving what waits', async () => {
    const { queue, writes, entry, close } = setup();
    queue.push(entry(1));
    const settling = queue.settle();
    close();
    queue.push(entry(2));
    writes[0].fail(new Error('down'));
    await settling;
    expect(queue.pending).toBe(1);
    expect(queue.takeQueued().map((p) => p.record.entityId)).toEqual(['e2']);
  });
});
