import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { eventually } from './support/app';
import { startQueryApp } from './support/query-app';
import { TestPostgres } from './support/postgres';

// The bound on page answers clients do not read (src/audit/query/page-deliveries.ts) sets its
// idle timer on the connection while an answer is out, and takes only its own listener away once
// it is delivered: a keep-alive connection left idle after a page answer is still closed by the
// server's keepAliveTimeout (Node's default 5 s), as it is after any other answer; otherwise every
// client that reads a page and keeps its connection would hold a socket for good.

/** Sends one keep-alive request, reads its answer whole, and resolves when the server closes the connection. */
async function idleAfter(port: number, path: string): Promise<{ status: number; closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\nx-auditor: yes\r\n\r\n`);
  const status = await new Promise<number>((resolve) => {
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const headEnd = received.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const head = received.subarray(0, headEnd).toString('latin1');
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (received.length >= headEnd + 4 + length) {
        socket.off('data', onData);
        resolve(Number(head.slice(9, 12)));
      }
    };
    socket.on('data', onData);
  });
  // The client keeps reading (it would see the end), and sends nothing more.
  socket.resume();
  return { status, closed };
}

describe('a keep-alive connection left idle after a page answer', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startQueryApp(db.url());
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('is closed by the server’s keepAliveTimeout after a page, as after an answer of another route', async () => {
    const port = (app.getHttpServer().address() as AddressInfo).port;
    const other = await idleAfter(port, '/no-such-route');
    const page = await idleAfter(port, '/audit?limit=5');
    expect([other.status, page.status]).toEqual([404, 200]);
    let pageClosed = false;
    void page.closed.then(() => (pageClosed = true));
    // The other route's connection goes after keepAliveTimeout (5 s); the page's must go by then too.
    await other.closed;
    await eventually(() => pageClosed, 10_000, 'the idle connection after a page closed by the server');
  }, 60_000);
});
