import fc from 'fast-check';
import { isolateRefused, splitBudgetMs } from './isolate-refused';

const contentError = (n: number) => Object.assign(new Error(`value ${n} out of range`), { code: '22008' });
const lockError = () => Object.assign(new Error('lock not available'), { code: '55P03' });

/** A fake table: a batch commits whole, or is refused whole when it holds a poison record. */
function fakeTable(poison: ReadonlySet<number>, failWith: (batch: number[]) => Error | undefined = () => undefined) {
  const committed: number[] = [];
  const calls: number[][] = [];
  const insert = (batch: number[]): Promise<void> => {
    calls.push(batch);
    const outage = failWith(batch);
    if (outage) return Promise.reject(outage);
    const bad = batch.find((n) => poison.has(n));
    if (bad !== undefined) return Promise.reject(contentError(bad));
    committed.push(...batch);
    return Promise.resolve();
  };
  return { insert, committed, calls };
}

describe('isolateRefused', () => {
  it('inserts a healthy batch in one round trip and refuses nothing', async () => {
    const table = fakeTable(new Set());
    await expect(isolateRefused([1, 2, 3], table.insert)).resolves.toEqual({ refused: [] });
    expect(table.calls).toEqual([[1, 2, 3]]);
  });

  it('tells the insert which round trip is the batch itself and which are parts of its split (own budget)', async () => {
    const table = fakeTable(new Set([3]));
    const phases: [number[], boolean][] = [];
    await isolateRefused([1, 2, 3, 4], (batch, splitting) => {
      phases.push([batch, splitting]);
      return table.insert(batch);
    });
    expect(phases).toEqual([
      [[1, 2, 3, 4], false],
      [[1, 2], true],
      [[3, 4], true],
      [[3], true],
      [[4], true],
    ]);
  });

  it('budgets a split at writeTimeoutMs per level of halving, at least one', () => {
    expect([1, 2, 300, 500, 512, 513].map((n) => splitBudgetMs(n, 1000))).toEqual([1000, 1000, 9000, 9000, 9000, 10_000]);
  });

  it('does not call the database for an empty batch', async () => {
    const table = fakeTable(new Set());
    await expect(isolateRefused([], table.insert)).resolves.toEqual({ refused: [] });
    expect(table.calls).toEqual([]);
  });

  it('commits every other record once and returns each refused record with its own error, within the stated round trips', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 1, max: 300 })
          .chain((n) => fc.tuple(fc.constant(n), fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), { maxLength: n }))),
        async ([n, poisonList]) => {
          const records = Array.from({ length: n }, (_, i) => i);
          const poison = new Set(poisonList);
          const table = fakeTable(poison);
          const { refused } = await isolateRefused(records, table.insert);

          expect(table.committed.sort((a, b) => a - b)).toEqual(records.filter((r) => !poison.has(r)));
          expect(refused.map((r) => r.record).sort((a, b) => a - b)).toEqual([...poison].sort((a, b) => a - b));
          for (const { record, error } of refused) expect(error).toMatchObject({ code: '22008', message: `value ${record} out of range` });
          const k = poison.size;
          expect(table.calls.length).toBeLessThanOrEqual(Math.min(1 + 2 * k * Math.ceil(Math.log2(n)), 2 * n - 1));
        },
      ),
    );
  });

  it('needs at most 19 round trips to isolate one refused record among 500', async () => {
    const table = fakeTable(new Set([377]));
    const { refused } = await isolateRefused(
      Array.from({ length: 500 }, (_, i) => i),
      table.insert,
    );
    expect(refused.map((r) => r.record)).toEqual([377]);
    expect(table.calls.length).toBeLessThanOrEqual(19);
    expect(table.committed).toHaveLength(499);
  });

  it('rejects with the first error about the database and stops inserting', async () => {
    // The database fails once the search has reached sub-batches of 4 records.
    const table = fakeTable(new Set([5]), (batch) => (batch.length <= 4 ? lockError() : undefined));
    await expect(isolateRefused([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], table.insert)).rejects.toMatchObject({
      code: '55P03',
    });
    expect(table.calls.map((c) => c.length)).toEqual([16, 8, 4]);
    expect(table.committed).toEqual([]);
  });

  it('rejects at once when the whole batch fails for the database, without splitting', async () => {
    const table = fakeTable(new Set([1]), lockError);
    await expect(isolateRefused([0, 1, 2], table.insert)).rejects.toMatchObject({ code: '55P03' });
    expect(table.calls).toEqual([[0, 1, 2]]);
  });

  it('classifies with the predicate it is given', async () => {
    const table = fakeTable(new Set([1]));
    await expect(isolateRefused([0, 1, 2], table.insert, () => false)).rejects.toMatchObject({ code: '22008' });
    expect(table.calls).toHaveLength(1);
  });
});
