import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import request from 'supertest';
import { eventually } from './support/app';
import { startQueryApp } from './support/query-app';
import { TestPostgres } from './support/postgres';
import { seedBigRows } from './support/unread-pages';

// PROBE (attacker A11): docs/GUIDE.md, "Page answers clients never read stay bounded": "When
// readConnections answers already hold bytes their clients have not taken, the next page ready
// answers 503 AUDIT_READ_BUSY with Retry-After (its read is done; clients that read as the answer
// comes never count, however many)". PageDeliveries counts every answer whose response still holds
// bytes (writableLength > 0): a client that reads its answer as it comes, only not as fast as the
// app writes it (an auditor behind a slow link downloading a 19 MB page), holds bytes for as long
// as its download lasts. Four such clients, each reading steadily, make every other page answer 503
// for the whole of their downloads.
const ROWS = 500;
const STEADY = 4;

/** Sends `GET path` as an auditor and reads its answer steadily, one chunk every `pauseMs`; counts the bytes read. */
function readSteadily(sockets: Socket[], port: number, path: string, pauseMs: number): { received: () => number; head: Promise<string> } {
  let received = 0;
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => undefined);
  socket.once('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-auditor: yes\r\n\r\n`));
  const head = new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.subarray(0, 12).toString('latin1'))));
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    socket.pause();
    setTimeout(() => socket.resume(), pauseMs);
  });
  return { received: () => received, head };
}

describe('PROBE: page answers read steadily by slow clients', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startQueryApp(db.url());
    await seedBigRows(db, ROWS);
  }, 90_000);

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await app?.close();
    await db?.stop();
  });

  it(`answers a page while ${STEADY} clients read theirs as it comes, at their pace`, async () => {
    const path = `/audit?entityId=big&limit=${ROWS}`;
    const port = (app.getHttpServer().address() as AddressInfo).port;
    const readers = Array.from({ length: STEADY }, () => readSteadily(sockets, port, path, 100));
    expect(await Promise.all(readers.map((reader) => reader.head))).toEqual(Array<string>(STEADY).fill('HTTP/1.1 200'));
    // Each is reading: a megabyte in, far from the end of its 19 MB answer.
    await eventually(() => readers.every((reader) => reader.received() > 1_000_000), 20_000, 'every steady reader past 1 MB');
    const { status } = await request(app.getHttpServer()).get(`/audit?entityId=big&limit=1`).set('x-auditor', 'yes');
    const stillReading = readers.every((reader) => reader.received() < 15_000_000);
    expect({ status, stillReading }).toEqual({ status: 200, stillReading: true });
  }, 60_000);
});
