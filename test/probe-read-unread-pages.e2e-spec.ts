import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import request from 'supertest';
import { AuditService } from '../src/audit';
import { startQueryApp } from './support/query-app';
import { TestPostgres } from './support/postgres';

// DESIGN promise 7 and 11, docs/GUIDE.md "Reads never disturb writes": readers that are slow, or
// that stop reading, cannot hold the app's resources; memory stays bounded. An export whose
// client stops reading is ended after exportIdleMs. A page is one JSON answer of up to 500 rows
// (each up to maxEntryBytes): a client that asks for it and never reads keeps the whole answer
// in the app's memory for as long as it keeps its socket open.
const ROWS = 500;
const NOTE = 'x'.repeat(40_000);
const CLIENTS = 12;

/** Every client's socket, destroyed after the suite. */
const sockets: Socket[] = [];

/** Sends a page request, waits for the first bytes of the answer, and then never reads again. */
function askAndStall(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.once('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-auditor: yes\r\n\r\n`));
    socket.once('readable', () => {
      const head = (socket.read(12) as Buffer | null)?.toString('latin1') ?? '';
      socket.pause();
      resolve(Number(head.slice(9, 12)));
    });
    socket.once('close', () => reject(new Error('closed before any answer')));
  });
}

/** Bytes the process holds once garbage is collected: the JS heap and the buffers outside it. */
function heldBytes(): number {
  (runInNewContext('gc') as () => void)();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

describe('probe: page answers that their clients never read', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    setFlagsFromString('--expose-gc');
    db = await TestPostgres.start();
    app = await startQueryApp(db.url());
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, changes)
       SELECT gen_random_uuid(), timestamptz '2026-10-01' + g * interval '1 second', 'nda_updated', 'NDA', 'big', 'user-1', 'success',
         jsonb_build_object('n', g, 'note', $1::text)
       FROM generate_series(1, ${ROWS}) AS g`,
      [NOTE],
    );
  }, 90_000);

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await app?.close();
    await db?.stop();
  });

  it(`keeps memory bounded while ${CLIENTS} clients hold a 500-row page each unread, and writes go on`, async () => {
    const path = `/audit?entityId=big&limit=${ROWS}`;
    const page = await request(app.getHttpServer()).get(path).set('x-auditor', 'yes').expect(200);
    const pageBytes = page.text.length;
    expect(pageBytes).toBeGreaterThan(ROWS * NOTE.length);
    const before = heldBytes();
    const port = (app.getHttpServer().address() as AddressInfo).port;
    for (let i = 0; i < CLIENTS; i += 1) expect(await askAndStall(port, path)).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const grown = heldBytes() - before;
    // Writes go on meanwhile.
    await app.get(AuditService).log({ action: 'nda_updated', entityType: 'NDA', entityId: 'during-unread-pages' });
    expect(await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'during-unread-pages'`)).toHaveLength(1);
    // Bounded: no more than the pages the read pool can produce at once, whatever the number of such clients.
    expect(grown).toBeLessThan(4 * pageBytes);
  }, 60_000);

  it('shuts down within readTimeoutMs while a client holds a 500-row page unread, as it does while exports are stalled', async () => {
    const other = await startQueryApp(db.url(), { readTimeoutMs: 2000 });
    const port = (other.getHttpServer().address() as AddressInfo).port;
    expect(await askAndStall(port, `/audit?entityId=big&limit=${ROWS}`)).toBe(200);
    let timer: NodeJS.Timeout | undefined;
    const closing = other.close().then(() => 'closed');
    const outcome = await Promise.race([closing, new Promise((resolve) => (timer = setTimeout(() => resolve('still closing'), 10_000)))]);
    clearTimeout(timer);
    // The app must not outlive the test: the client lets go, and the close then ends.
    for (const socket of sockets) socket.destroy();
    await closing;
    expect(outcome).toBe('closed');
  }, 60_000);
});
