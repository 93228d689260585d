import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import { type AddressInfo, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import request from 'supertest';
import { AuditService } from '../src/audit';
import { eventually } from './support/app';
import { startQueryApp } from './support/query-app';
import { TestPostgres } from './support/postgres';
import { askAndStall, BIG_NOTE, seedBigRows } from './support/unread-pages';

// DESIGN promise 7 and 11, docs/GUIDE.md "Reads never disturb writes": readers that are slow, or
// that stop reading, cannot hold the app's resources; memory stays bounded. A page is one JSON
// answer of up to 500 rows (each up to maxEntryBytes), held in the app until its client has read
// it: at most readConnections page answers wait for clients that do not read them (one more
// answers 503 AUDIT_READ_BUSY at once), and a client that takes nothing for exportIdleMs loses its
// connection, as a stalled export does.
const ROWS = 500;
const CLIENTS = 12;

/** Every client's socket, destroyed after the suite. */
const sockets: Socket[] = [];

/** Bytes the process holds once garbage is collected: the JS heap and the buffers outside it. */
function heldBytes(): number {
  (runInNewContext('gc') as () => void)();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

describe('page answers that their clients never read', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    setFlagsFromString('--expose-gc');
    db = await TestPostgres.start();
    app = await startQueryApp(db.url());
    await seedBigRows(db, ROWS);
  }, 90_000);

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await app?.close();
    await db?.stop();
  });

  it(`keeps memory bounded while ${CLIENTS} clients ask for a 500-row page each and never read, and writes go on`, async () => {
    const path = `/audit?entityId=big&limit=${ROWS}`;
    const page = await request(app.getHttpServer()).get(path).set('x-auditor', 'yes').expect(200);
    const pageBytes = page.text.length;
    expect(pageBytes).toBeGreaterThan(ROWS * BIG_NOTE.length);
    const before = heldBytes();
    const server = app.getHttpServer();
    const connections: Socket[] = [];
    server.on('connection', (socket: Socket) => connections.push(socket));
    const port = (server.address() as AddressInfo).port;
    const statuses: number[] = [];
    for (let i = 0; i < CLIENTS; i += 1) statuses.push(await askAndStall(sockets, port, path));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const grown = heldBytes() - before;
    // What the app holds for each client: the bytes of its answer not yet taken by the kernel.
    const unsent = connections.map((socket) => socket.writableLength);
    // Writes go on meanwhile.
    await app.get(AuditService).log({ action: 'nda_updated', entityType: 'NDA', entityId: 'during-unread-pages' });
    expect(await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'during-unread-pages'`)).toHaveLength(1);
    // readConnections (4) answers on their way; the others refused at once.
    expect(statuses).toEqual([...Array<number>(4).fill(200), ...Array<number>(CLIENTS - 4).fill(503)]);
    // The four answered clients each hold one page and its head, until written; the refused ones
    // hold nothing.
    expect(unsent.slice(0, 4).every((bytes) => bytes > pageBytes && bytes < pageBytes + 1024)).toBe(true);
    expect(unsent.slice(4)).toEqual(Array<number>(CLIENTS - 4).fill(0));
    // And so does the process: twelve answered clients hold about ten pages here; the garbage
    // collector's timing moves the figure by about a page either way.
    expect(grown).toBeLessThan(7.5 * pageBytes);
  }, 60_000);

  it('closes the connection of a client that takes nothing for exportIdleMs, and answers the next one', async () => {
    const other = await startQueryApp(db.url(), { readConnections: 2, maxExports: 1, exportIdleMs: 1000 });
    try {
      const port = (other.getHttpServer().address() as AddressInfo).port;
      const path = `/audit?entityId=big&limit=${ROWS}`;
      expect([
        await askAndStall(sockets, port, path),
        await askAndStall(sockets, port, path),
        await askAndStall(sockets, port, path),
      ]).toEqual([200, 200, 503]);
      const busy = await request(other.getHttpServer()).get(path).set('x-auditor', 'yes').expect(503);
      expect([busy.body.code, busy.headers['retry-after']]).toEqual(['AUDIT_READ_BUSY', expect.stringMatching(/^\d+$/)]);
      // The stalled clients' connections are closed after a second without progress, and their places freed.
      await eventually(async () => (await request(other.getHttpServer()).get(path).set('x-auditor', 'yes')).status === 200, 10_000);
    } finally {
      await other.close();
    }
  }, 60_000);

  it('shuts down within readTimeoutMs while a client holds a 500-row page unread, as it does while exports are stalled', async () => {
    const other = await startQueryApp(db.url(), { readTimeoutMs: 2000 });
    const port = (other.getHttpServer().address() as AddressInfo).port;
    expect(await askAndStall(sockets, port, `/audit?entityId=big&limit=${ROWS}`)).toBe(200);
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
