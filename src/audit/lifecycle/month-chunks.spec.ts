import { FIRST_KEY, inParts, LAST_KEY } from './month-chunks';
import { type SealHead } from './month-analysis';

const head = (seq: number, checkpoint = false, sealedAt = 1000 * seq): SealHead => ({
  seq,
  last: { tx: BigInt(100 + seq), id: `00000000-0000-0000-0000-${String(seq).padStart(12, '0')}` },
  rowCount: checkpoint ? 0 : 10,
  hash: Buffer.alloc(32),
  checkpoint,
  sealedAt,
});
const keyOf = (seq: number) => [String(100 + seq), `00000000-0000-0000-0000-${String(seq).padStart(12, '0')}`];
const cancelled = () => Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' });

describe('inParts', () => {
  let statements: string[];
  const query = (sql: string) => (statements.push(sql), Promise.resolve([]));

  beforeEach(() => (statements = []));

  it('tiles the sealing order from the first key to the last, at seals’ last rows, each part under its savepoint', async () => {
    const parts: unknown[][] = [];
    // Every part "takes" a third of the timeout and more: the next one never grows.
    let clock = 0;
    await inParts(query, [head(1), head(2), head(3, true), head(4)], { timeoutMs: 300, now: () => (clock += 60) }, (after, upto) =>
      Promise.resolve(parts.push([after, upto])),
    );
    expect(parts).toEqual([
      [FIRST_KEY, keyOf(1)],
      [keyOf(1), keyOf(2)],
      [keyOf(2), keyOf(4)],
      [keyOf(4), LAST_KEY],
    ]);
    expect(statements.filter((s) => s.startsWith('SAVEPOINT'))).toHaveLength(4);
    expect(statements.filter((s) => s.startsWith('RELEASE'))).toHaveLength(4);
  });

  it('doubles the seals of a part after a quick one, halves them after a slow one', async () => {
    const parts: unknown[][] = [];
    // Each part reads the clock as it starts and as it ends: 1 ms, 1 ms, 200 ms, 1 ms.
    const times = [0, 1, 1, 2, 2, 202, 202, 203];
    const now = () => times.shift() ?? 203;
    await inParts(
      query,
      [1, 2, 3, 4, 5, 6, 7, 8].map((seq) => head(seq)),
      { timeoutMs: 300, now },
      (after, upto) => Promise.resolve(parts.push([after[0], upto[0]])),
    );
    // 1 seal, then 2, then 4 (slow: halved to 2), then the rest (the last part ends at the last key).
    expect(parts).toEqual([
      [FIRST_KEY[0], '101'],
      ['101', '103'],
      ['103', '107'],
      ['107', LAST_KEY[0]],
    ]);
  });

  it('takes a part cut by the statement timeout again with a quarter of its seals, after rolling it back', async () => {
    const parts: unknown[][] = [];
    let first = true;
    await inParts(
      query,
      [1, 2, 3, 4, 5].map((seq) => head(seq)),
      { timeoutMs: 300, firstSeals: 4, now: () => 0 },
      (after, upto) => {
        if (first) {
          first = false;
          return Promise.reject(cancelled());
        }
        return Promise.resolve(parts.push([after[0], upto[0]]));
      },
    );
    expect(parts[0]).toEqual([FIRST_KEY[0], '101']);
    expect(statements.filter((s) => s.startsWith('ROLLBACK TO SAVEPOINT'))).toHaveLength(1);
  });

  it('gives up on a part of one seal cut a third time running, and throws any other error at once', async () => {
    let calls = 0;
    await expect(inParts(query, [head(1)], { timeoutMs: 300 }, () => (calls++, Promise.reject(cancelled())))).rejects.toMatchObject({
      code: '57014',
    });
    expect(calls).toBe(3);
    const denied = Object.assign(new Error('permission denied'), { code: '42501' });
    calls = 0;
    await expect(
      inParts(query, [head(1), head(2)], { timeoutMs: 300, firstSeals: 2 }, () => (calls++, Promise.reject(denied))),
    ).rejects.toBe(denied);
    expect(calls).toBe(1);
  });

  it('takes the seals made before the month began as one first part, then parts of one seal', async () => {
    const parts: unknown[][] = [];
    const heads = [1, 2, 3, 4, 5, 6].map((seq) => head(seq));
    // Seals 1–4 were made before 4 500 ms; every part takes a third of the timeout (no growth).
    let clock = 0;
    await inParts(query, heads, { timeoutMs: 300, monthStart: 4500, now: () => (clock += 60) }, (after, upto) =>
      Promise.resolve(parts.push([after[0], upto[0]])),
    );
    expect(parts).toEqual([
      [FIRST_KEY[0], '104'],
      ['104', '105'],
      ['105', '106'],
      ['106', LAST_KEY[0]],
    ]);
    // A month after every seal: all of them in the first part, then the rows after the newest.
    parts.length = 0;
    await inParts(query, heads, { timeoutMs: 300, monthStart: 9000, now: () => 0 }, (after, upto) =>
      Promise.resolve(parts.push([after[0], upto[0]])),
    );
    expect(parts).toEqual([
      [FIRST_KEY[0], '106'],
      ['106', LAST_KEY[0]],
    ]);
  });
});
