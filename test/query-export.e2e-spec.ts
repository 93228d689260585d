import { type INestApplication } from '@nestjs/common';
import { get as httpGet, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import request from 'supertest';
import { TestPostgres } from './support/postgres';
import { orderedId, seed, startQueryApp } from './support/query-app';
import { parseCsv } from './support/csv';

const ROWS = 100_000;
const NOTE = 'x'.repeat(2000);

/** A full garbage collection, then the bytes still held: what an export keeps, not what it passed through. */
function retainedMb(): number {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return (heapUsed + arrayBuffers) / 1024 ** 2;
}

// Exports stream over HTTP in chunks as they are read: 100k rows of 2 KB leave the memory flat.
describe('exporting the trail', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startQueryApp(db.url());
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, changes)
       SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, timestamptz '2026-10-01' + g * interval '1 second',
         'bulk_imported', 'NDA', 'bulk-' || g, 'user-' || g % 7, 'success', jsonb_build_object('n', g, 'note', $1::text)
       FROM generate_series(1, ${ROWS}) AS g`,
      [NOTE],
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('streams 100k rows as NDJSON, oldest first, holding no more than a few batches', async () => {
    const { port } = app.getHttpServer().address() as AddressInfo;
    const baseline = retainedMb();
    const retained: number[] = [];
    let lines = 0;
    let bytes = 0;
    let previous = '';
    let rest = '';
    await new Promise<void>((resolve, reject) => {
      httpGet(
        { port, host: '127.0.0.1', path: '/audit/export?from=2026-10-01&format=ndjson', headers: { 'x-auditor': 'yes' } },
        (res: IncomingMessage) => {
          expect(res.statusCode).toBe(200);
          expect(res.headers['content-type']).toBe('application/x-ndjson; charset=utf-8');
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            bytes += chunk.length;
            const parts = (rest + chunk).split('\n');
            rest = parts.pop() as string;
            for (const line of parts) {
              const row = JSON.parse(line) as { id: string; changes: { n: number; note: string } };
              lines += 1;
              if (row.id <= previous || row.changes.note !== NOTE) reject(new Error(`row ${lines} out of order or altered: ${row.id}`));
              previous = row.id;
              if (lines % 25_000 === 0) retained.push(retainedMb() - baseline);
            }
          });
          res.on('end', resolve);
          res.on('error', reject);
        },
      ).on('error', reject);
    });
    expect(rest).toBe('');
    expect(lines).toBe(ROWS);
    expect(previous).toBe(orderedId(ROWS));
    expect(bytes).toBeGreaterThan(200 * 1024 ** 2);
    // The whole export is over 200 MB; what stays in memory at any quarter of it is a few batches
    // (two of about 4 MB of text each, with their rows and the socket's buffers: 0.5 to 41 MB
    // measured), never a growing share of the export: less than a quarter of it.
    expect(Math.max(...retained)).toBeLessThan(bytes / 1024 ** 2 / 4);
  }, 120_000);

  it('streams rows near maxEntryBytes a few dozen at a time, holding a few batches of about 4 MB each', async () => {
    const big = 'y'.repeat(60_000);
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, outcome, changes)
       SELECT gen_random_uuid(), timestamptz '2026-09-01' + g * interval '1 second', 'bulk_imported', 'BIG', 'big-' || g, 'success',
         jsonb_build_object('n', g, 'note', $1::text)
       FROM generate_series(1, 3000) AS g`,
      [big],
    );
    const { port } = app.getHttpServer().address() as AddressInfo;
    const baseline = retainedMb();
    const retained: number[] = [];
    let lines = 0;
    let rest = '';
    await new Promise<void>((resolve, reject) => {
      httpGet(
        { port, host: '127.0.0.1', path: '/audit/export?entityType=BIG', headers: { 'x-auditor': 'yes' } },
        (res: IncomingMessage) => {
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            const parts = (rest + chunk).split('\n');
            rest = parts.pop() as string;
            lines += parts.length;
            if (parts.length > 0 && lines % 500 < parts.length) retained.push(retainedMb() - baseline);
          });
          res.on('end', resolve);
          res.on('error', reject);
        },
      ).on('error', reject);
    });
    expect(lines).toBe(3000);
    // 180 MB in all. A batch of 2000 such rows alone would be 240 MB of text: batches are sized by
    // their rows' weight to about 4 Mi characters (8 MB), so what stays is a few of them.
    expect(Math.max(...retained)).toBeLessThan(64);
  }, 120_000);

  it('writes CSV per RFC 4180: header, CRLF, quoted commas, quotes and line breaks, null as an empty field', async () => {
    const agent = 'Mozilla/5.0 (X11, "quoted")\r\nsecond line';
    await seed(db, [
      { id: orderedId(ROWS + 1), occurredAt: '2026-12-01T00:00:00Z', entityId: 'a,b', userAgent: agent, changes: { say: 'he said "hi"' } },
      { id: orderedId(ROWS + 2), occurredAt: '2026-12-01T00:00:01Z', entityId: '', userId: null },
    ]);
    const response = await request(app.getHttpServer()).get('/audit/export?format=csv&from=2026-12-01').set('x-auditor', 'yes').expect(200);
    expect(response.headers['content-type']).toBe('text/csv; charset=utf-8; header=present');
    expect(response.headers['content-disposition']).toMatch(/^attachment; filename="audit-.+\.csv"$/);
    expect(response.text.endsWith('\r\n')).toBe(true);
    const [header, first, second, ...more] = parseCsv(response.text);
    expect(more).toEqual([]);
    expect(header).toEqual([
      'id',
      'occurredAt',
      'action',
      'entityType',
      'entityId',
      'userId',
      'outcome',
      'ip',
      'userAgent',
      'requestId',
      'changes',
      'metadata',
      'recordedAt',
      'erasedBy',
    ]);
    const row = Object.fromEntries(header.map((name, i) => [name, first[i]]));
    expect(row).toMatchObject({
      id: orderedId(ROWS + 1),
      occurredAt: '2026-12-01T00:00:00.000Z',
      entityId: 'a,b',
      userAgent: agent,
      ip: '',
    });
    expect(JSON.parse(row.changes)).toEqual({ say: 'he said "hi"' });
    expect(response.text).toContain(`,"",,success,`);
    expect(second[header.indexOf('userId')]).toBe('');
  });
});
