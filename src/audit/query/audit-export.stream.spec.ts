import { type Readable } from 'node:stream';
import { AUDIT_ERROR_CODES, AuditReadError } from '../audit.errors';
import { exportLines } from './audit-export.format';
import { EXPORT_BATCH, EXPORT_BATCH_CHARS } from './audit-export.batches';
import { openExport } from './audit-export.stream';
import { type AuditReader, type ReadClient, type ReadResult } from './audit-reader';
import { type ExportRow } from './audit-query.sql';

const ROW: ExportRow = {
  id: '00000000-0000-7000-8000-000000000001',
  occurred_at: '2026-11-28T09:00:00.000Z',
  action: 'nda_updated',
  entity_type: 'NDA',
  entity_id: '42',
  user_id: 'u',
  outcome: 'success',
  ip: null,
  user_agent: null,
  request_id: null,
  changes: null,
  metadata: null,
  recorded_at: '2026-11-28T09:00:00.001Z',
};

/**
 * A connection over the cursors' `rows`: each FETCH answers as many as it asks for, from the rows'
 * cursor or, as their weights (the length of their varying texts and 200), from the weights' cursor.
 */
function fakeClient(rows: ExportRow[]): ReadClient & { released: (boolean | Error | undefined)[]; asked: number[] } {
  const released: (boolean | Error | undefined)[] = [];
  const asked: number[] = [];
  let at = 0;
  let weighed = 0;
  const weight = (row: ExportRow) => 200 + Object.values(row).reduce((sum: number, value) => sum + (value?.length ?? 0), 0);
  return {
    released,
    asked,
    query<R>(text: string): Promise<ReadResult<R>> {
      if (text === 'COMMIT' || text.startsWith('BEGIN')) return Promise.resolve({ rows: [] });
      const [, count, cursor] = /^FETCH (\d+) FROM (audit_export(?:_weights)?)$/.exec(text) ?? [];
      if (cursor === 'audit_export_weights') {
        const weights = rows.slice(weighed, weighed + Number(count)).map((row) => ({ weight: String(weight(row)) }));
        weighed += weights.length;
        return Promise.resolve({ rows: weights as R[] });
      }
      asked.push(Number(count));
      const batch = rows.slice(at, at + Number(count));
      at += batch.length;
      return Promise.resolve({ rows: batch as R[] });
    },
    release(destroy?: boolean | Error) {
      released.push(destroy);
    },
  };
}

const SELECT = { rows: 'SELECT', weights: 'SELECT' };

function fakeReader(client: ReadClient): AuditReader {
  return {
    timeoutMs: 1000,
    connection: () => Promise.resolve(client),
    within: <T>(promise: Promise<T>) => promise,
    readError: (error: unknown) => error as AuditReadError,
  } as unknown as AuditReader;
}

async function readAll(stream: Readable): Promise<string[]> {
  const chunks: string[] = [];
  for await (const chunk of stream) chunks.push(chunk as string);
  return chunks;
}

describe('export stream', () => {
  afterEach(() => jest.useRealTimers());

  it('hands a batch out in pieces that never split a surrogate pair, and commits at the end', async () => {
    // One row whose action puts an emoji across the first 64 Ki boundary.
    const prefix = exportLines('ndjson', [{ ...ROW, action: '' }]).indexOf('"action":"') + '"action":"'.length;
    const row = { ...ROW, action: `${'a'.repeat(65_535 - prefix)}😀${'b'.repeat(70_000)}` };
    const client = fakeClient([row]);
    const chunks = await readAll(await openExport(fakeReader(client), SELECT, 'ndjson', 30_000));
    expect(chunks.join('')).toBe(exportLines('ndjson', [row]));
    expect(chunks.length).toBeGreaterThan(1);
    for (const chunk of chunks) expect(chunk.charCodeAt(chunk.length - 1)).not.toBe(0xd83d);
    expect(client.released).toEqual([undefined]);
  });

  it('reads the batches after the first as the consumer asks', async () => {
    const rows = Array.from({ length: 2 * EXPORT_BATCH + 1 }, (_, i) => ({ ...ROW, entity_id: String(i) }));
    const client = fakeClient(rows);
    const text = (await readAll(await openExport(fakeReader(client), SELECT, 'csv', 30_000))).join('');
    expect(text.split('\r\n')).toHaveLength(1 + 2 * EXPORT_BATCH + 1 + 1);
    // Small rows: the most a batch takes, from the first.
    expect(client.asked).toEqual([EXPORT_BATCH, EXPORT_BATCH, 1]);
  });

  it('fetches large rows a few at a time, so that a batch holds about EXPORT_BATCH_CHARS whatever the rows weigh', async () => {
    const rows = Array.from({ length: 1000 }, (_, i) => ({
      ...ROW,
      entity_id: String(i),
      changes: JSON.stringify({ note: 'x'.repeat(60_000) }),
    }));
    const client = fakeClient(rows);
    const text = (await readAll(await openExport(fakeReader(client), SELECT, 'ndjson', 30_000))).join('');
    expect(text.trimEnd().split('\n')).toHaveLength(1000);
    for (const count of client.asked) expect(count * 60_000).toBeLessThanOrEqual(EXPORT_BATCH_CHARS);
    expect(client.asked.length).toBeGreaterThan(1);
  });

  it('cuts each batch at the weight of its own rows when they grow heavy mid-way, never by the batch before it', async () => {
    const small = Array.from({ length: 2200 }, (_, i) => ({ ...ROW, entity_id: String(i) }));
    const large = Array.from({ length: 300 }, (_, i) => ({
      ...ROW,
      entity_id: `l${i}`,
      changes: JSON.stringify({ note: 'y'.repeat(60_000) }),
    }));
    const client = fakeClient([...small, ...large]);
    const text = (await readAll(await openExport(fakeReader(client), SELECT, 'ndjson', 30_000))).join('');
    expect(text.trimEnd().split('\n')).toHaveLength(2500);
    // The second batch: the 200 small rows left, then the large ones up to the budget (about 66 of them).
    expect(client.asked[0]).toBe(EXPORT_BATCH);
    expect(client.asked[1]).toBeGreaterThan(200);
    expect(client.asked[1]).toBeLessThan(200 + 70);
    for (const count of client.asked.slice(2)) expect(count).toBeLessThan(70);
  });

  it('takes a row heavier than the whole budget alone, and ends on an empty search', async () => {
    const heavy = { ...ROW, changes: JSON.stringify({ note: 'z'.repeat(EXPORT_BATCH_CHARS + 1) }) };
    const client = fakeClient([ROW, heavy, ROW]);
    const text = (await readAll(await openExport(fakeReader(client), SELECT, 'csv', 30_000))).join('');
    expect(text.split('\r\n')).toHaveLength(1 + 3 + 1);
    expect(client.asked).toEqual([1, 1, 1]);
    const empty = fakeClient([]);
    expect((await readAll(await openExport(fakeReader(empty), SELECT, 'csv', 30_000))).join('').split('\r\n')).toHaveLength(2);
    expect(empty.asked).toEqual([]);
    expect(empty.released).toEqual([undefined]);
  });

  it('ends with AUDIT_EXPORT_STALLED and closes its connection when the consumer takes nothing for idleMs', async () => {
    jest.useFakeTimers();
    const client = fakeClient(Array.from({ length: 3 * EXPORT_BATCH }, () => ({ ...ROW, user_agent: 'x'.repeat(100) })));
    const stream = await openExport(fakeReader(client), SELECT, 'ndjson', 1000);
    const failed = new Promise<unknown>((resolve) => stream.once('error', resolve));
    stream.once('data', () => stream.pause());
    await jest.advanceTimersByTimeAsync(999);
    expect(stream.destroyed).toBe(false);
    await jest.advanceTimersByTimeAsync(2);
    const error = await failed;
    expect(error).toBeInstanceOf(AuditReadError);
    expect(error).toMatchObject({ code: AUDIT_ERROR_CODES.exportStalled });
    expect(client.released).toEqual([true]);
  });
});
