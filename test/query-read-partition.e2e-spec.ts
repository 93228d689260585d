import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { startQueryApp } from './support/query-app';
import { sleep, TestPostgres } from './support/postgres';
import { TcpProxy } from './support/tcp-proxy';

// readTimeoutMs bounds a read, in the database and waiting for a connection (README): in a silent
// partition the server's statement_timeout cannot reach the app, so a read past its deadline
// destroys its connection. Pages that time out never keep the read pool, and reads answer 200 again
// once the network is back. (With fewer idle connections a page that must open one fails at
// connectionTimeoutMillis and frees its slot.)
describe('page reads during a silent partition', () => {
  let db: TestPostgres;
  let proxy: TcpProxy;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('reads');
    proxy = await TcpProxy.start(db.port);
    app = await startQueryApp(db.url('reads').replace(`:${db.port}/`, `:${proxy.port}/`), { readTimeoutMs: 500 });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await proxy?.stop();
    await db?.stop();
  });

  const page = () => request(app.getHttpServer()).get('/audit?entityType=NDA').set('x-auditor', 'yes').timeout(10_000);

  it('reads answer 200 again once the network is back', async () => {
    // Busy enough a moment before that the pool holds its 4 connections, idle, when the network goes.
    expect((await Promise.all(Array.from({ length: 8 }, () => page()))).map((r) => r.status)).toEqual(Array(8).fill(200));
    proxy.blackhole();
    // More pages than read connections (default 4), each answered 503 at its deadline.
    const during = await Promise.all(Array.from({ length: 6 }, () => page()));
    expect(during.map((r) => r.status)).toEqual([503, 503, 503, 503, 503, 503]);
    proxy.forward();
    await sleep(1000);
    const after: number[] = [];
    for (let i = 0; i < 10; i++) {
      after.push((await page()).status);
      if (after.at(-1) === 200) break;
      await sleep(1000);
    }
    expect(after.at(-1)).toBe(200);
  }, 60_000);
});
