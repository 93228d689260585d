import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import request from 'supertest';
import { eventually } from './support/app';
import { startQueryApp } from './support/query-app';
import { TestPostgres } from './support/postgres';

// CHANGELOG "Page answers that their clients never read" and docs/GUIDE.md: "a client that takes
// nothing for exportIdleMs loses its connection". A keep-alive client that sends two page requests
// at once (HTTP/1.1 pipelining, or a second request queued on its connection), reads the first
// answer whole and then stops reading must lose its connection too: otherwise its second answer
// waits for ever, held in the process and counted against readConnections.
const ROWS = 500;
const NOTE = 'x'.repeat(40_000);
const PATH = `/audit?entityId=big&limit=${ROWS}`;

describe('a page answer queued behind another on a keep-alive connection', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startQueryApp(db.url(), { readConnections: 2, maxExports: 1, exportIdleMs: 3000 });
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

  it('closes the connection of a client that reads its first pipelined page and then takes nothing for exportIdleMs', async () => {
    const port = (app.getHttpServer().address() as AddressInfo).port;
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.pause();
    const ask = `GET ${PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-auditor: yes\r\n\r\n`;
    socket.write(ask + ask);
    // Both answers are out of the reads and wait for this client: the next page is refused (readConnections 2).
    await eventually(
      async () => (await request(app.getHttpServer()).get(PATH).set('x-auditor', 'yes')).status === 503,
      10_000,
      'both pipelined answers waiting',
    );
    // The client reads the first answer whole, then stops reading.
    await new Promise<void>((resolve, reject) => {
      let received = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        const headEnd = received.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(received.subarray(0, headEnd).toString('latin1'))?.[1]);
        if (received.length >= headEnd + 4 + length) {
          socket.off('data', onData);
          socket.pause();
          resolve();
        }
      };
      socket.on('data', onData);
      socket.once('close', () => reject(new Error('closed before the first answer was read')));
      socket.resume();
    });
    const server = app.getHttpServer();
    const open = () =>
      new Promise<number>((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
    expect(await open()).toBe(1);
    // Nothing taken of the second answer: the server must drop the connection after exportIdleMs (3 s).
    // (The client's own socket, paused with bytes unread, would not see the end until it reads.)
    await eventually(async () => (await open()) === 0, 20_000, 'the stalled connection dropped by the server');
  }, 60_000);
});
