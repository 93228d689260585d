import { type Readable } from 'node:stream';
import { AUDIT_ERROR_CODES, AuditReadError } from '../audit.errors';
import { exportLines } from './audit-export.format';
import { batchRows, EXPORT_BATCH, EXPORT_BATCH_CHARS, FIRST_BATCH, openExport } from './audit-export.stream';
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

/** A connection over the cursor's `rows`: each FETCH (the first one in the DECLARE's query) answers as many as it asks for. */
function fakeClient(rows: ExportRow[]): ReadClient & { released: (boolean | Error | undefined)[]; asked: number[] } {
  const released: (boolean | Error | undefined)[] = [];
  const asked: number[] = [];
  let at = 0;
  return {
    released,
    asked,
    query<R>(text: string): Promise<ReadResult<R>> {
      if (text === 'COMMIT') return Promise.resolve({ rows: [] });
      const count = Number(/FETCH (\d+) FROM audit_export$/.exec(text)?.[1]);
      asked.push(count);
      const batch = rows.slice(at, at + count);
      at += batch.length;
      return Promise.resolve({ rows: batch as R[] });
    },
    release(destroy?: boolean | Error) {
      released.push(destroy);
    },
  };
}

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
    const chunks = await readAll(await openExport(fakeReader(client), 'SELECT', 'ndjson', 30_000));
    expect(chunks.join('')).toBe(exportLines('ndjson', [row]));
    expect(chunks.length).toBeGreaterThan(1);
    for (const chunk of chunks) expect(chunk.charCodeAt(chunk.length - 1)).not.toBe(0xd83d);
    expect(client.released).toEqual([undefined]);
  });

  it('reads the batches after the first as the consumer asks', async () => {
    const rows = Array.from({ length: 2 * EXPORT_BATCH + 1 }, (_, i) => ({ ...ROW, entity_id: String(i) }));
    const client = fakeClient(rows);
    const text = (await readAll(await openExport(fakeReader(client), 'SELECT', 'csv', 30_000))).join('');
    expect(text.split('\r\n')).toHaveLength(1 + 2 * EXPORT_BATCH + 1 + 1);
    // Small rows: the first FETCH, then the most a batch takes.
    expect(client.asked).toEqual([FIRST_BATCH, EXPORT_BATCH, EXPORT_BATCH]);
  });

  it('fetches large rows a few at a time, so that a batch holds about EXPORT_BATCH_CHARS whatever the rows weigh', async () => {
    const rows = Array.from({ length: 1000 }, (_, i) => ({
      ...ROW,
      entity_id: String(i),
      changes: JSON.stringify({ note: 'x'.repeat(60_000) }),
    }));
    const client = fakeClient(rows);
    const text = (await readAll(await openExport(fakeReader(client), 'SELECT', 'ndjson', 30_000))).join('');
    expect(text.trimEnd().split('\n')).toHaveLength(1000);
    const [first, ...later] = client.asked;
    expect(first).toBe(FIRST_BATCH);
    for (const count of later) expect(count * 60_000).toBeLessThanOrEqual(EXPORT_BATCH_CHARS);
    expect(later.length).toBeGreaterThan(1);
  });

  it('sizes a batch by the one before it, from 1 to EXPORT_BATCH rows', () => {
    expect(batchRows(200, 12_000_000)).toBe(69);
    expect(batchRows(200, 400_000)).toBe(EXPORT_BATCH);
    expect(batchRows(1, 50_000_000)).toBe(1);
    expect(batchRows(0, 0)).toBe(EXPORT_BATCH);
  });

  it('ends with AUDIT_EXPORT_STALLED and closes its connection when the consumer takes nothing for idleMs', async () => {
    jest.useFakeTimers();
    const client = fakeClient(Array.from({ length: 3 * EXPORT_BATCH }, () => ({ ...ROW, user_agent: 'x'.repeat(100) })));
    const stream = await openExport(fakeReader(client), 'SELECT', 'ndjson', 1000);
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
