import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import request from 'supertest';
import { eventually } from './support/app';
import { startQueryApp } from './support/query-app';
import { TestPostgres } from './support/postgres';
import { seedBigRows } from './support/unread-pages';

// docs/GUIDE.md, "Page answers clients never read stay bounded": a page answer counts while the
// app holds bytes of it its client has not taken, whether that client reads slowly or not at all
// (the app cannot tell them apart: the kernel takes the first megabytes of every answer at once,
// and a slow reader's progress shows only in bursts seconds apart; and clients that took a few
// bytes now and then would hold memory without bound if readers never counted). A page answer of
// at most 64 KiB is never refused: it holds no more than any small HTTP answer. So while four auditors download 19 MB pages steadily but
// slowly (about 640 KB/s), another auditor's small page is answered, and a 19 MB one is refused
// with 503 AUDIT_READ_BUSY and Retry-After until a download ends.
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

describe('page answers read steadily by slow clients', () => {
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

  it(`answers a small page, and refuses a 19 MB one, while ${STEADY} clients read 19 MB pages as they come, at their pace`, async () => {
    const path = `/audit?entityId=big&limit=${ROWS}`;
    const port = (app.getHttpServer().address() as AddressInfo).port;
    const readers = Array.from({ length: STEADY }, () => readSteadily(sockets, port, path, 100));
    expect(await Promise.all(readers.map((reader) => reader.head))).toEqual(Array<string>(STEADY).fill('HTTP/1.1 200'));
    // Each is reading: a megabyte in, far from the end of its 19 MB answer.
    await eventually(() => readers.every((reader) => reader.received() > 1_000_000), 20_000, 'every steady reader past 1 MB');
    const small = await request(app.getHttpServer()).get(`/audit?entityId=big&limit=1`).set('x-auditor', 'yes');
    const big = await request(app.getHttpServer()).get(path).set('x-auditor', 'yes');
    const stillReading = readers.every((reader) => reader.received() < 15_000_000);
    const answer = small.body as { items?: unknown[]; code?: string };
    expect({ small: small.status, code: answer.code, items: answer.items?.length, stillReading }).toEqual({
      small: 200,
      code: undefined,
      items: 1,
      stillReading: true,
    });
    expect([big.status, (big.body as { code?: string }).code, big.headers['retry-after']]).toEqual([
      503,
      'AUDIT_READ_BUSY',
      expect.stringMatching(/^\d+$/),
    ]);
  }, 60_000);
});
