// A write committed by a failed string is counted on the row of the request that sent it, also
// on a pooled connection another request opened and with the error read before the ReadyForQuery
// after it (an AnswerFaultProxy that delays what follows each error): the follower settles the string in the caller's async context, not
// in that of the connection's socket (docs/GUIDE.md, diffs section).
import { Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource, type QueryRunner } from 'typeorm';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';
import { AnswerFaultProxy } from './support/answer-fault-proxy';

let reached: () => void = () => undefined;
let gate: Promise<void> = Promise.resolve();

interface PoolCounts {
  idleCount: number;
}

@Controller('other')
class OtherRequestController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Opens a new pooled connection while it runs, hands it back to the pool, then waits for the test. */
  @Post('hold')
  async hold(): Promise<void> {
    const pool = (this.db.driver as unknown as { master: PoolCounts }).master;
    const taken: QueryRunner[] = [];
    // Every idle connection taken, the next one is opened now, in this request.
    while (pool.idleCount > 0) {
      const runner = this.db.createQueryRunner();
      await runner.connect();
      taken.push(runner);
    }
    const opened = this.db.createQueryRunner();
    await opened.connect();
    for (const runner of taken) await runner.release();
    // Released last: the pool hands it out first.
    await opened.release();
    reached();
    await gate;
  }

  @Post('write')
  async write(): Promise<void> {
    await this.db.query(`BEGIN; UPDATE contract SET title = 'other done' WHERE title = 'other'; COMMIT; SELECT 1/0`).catch(() => undefined);
  }
}

describe('a failed string settled on a connection another request opened', () => {
  let db: TestPostgres;
  let proxy: AnswerFaultProxy;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    proxy = await AnswerFaultProxy.start(db.port, { delayMs: 50 });
    const appUrl = db.url().replace(`:${db.port}/`, `:${proxy.port}/`);
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [OtherRequestController], appUrl });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await proxy?.stop();
    await db?.stop();
  });

  it('counts the write on the row of the request that made it, not on the one that opened the connection', async () => {
    await db.query(`INSERT INTO contract (title, counterparty) VALUES ('other', 'Other Ltd')`);
    let release: () => void = () => undefined;
    gate = new Promise<void>((resolve) => (release = resolve));
    const holding = new Promise<void>((resolve) => (reached = resolve));
    const held = request(app.getHttpServer())
      .post('/other/hold')
      .set('x-request-id', 'other-hold')
      .then((response) => response.status);
    await holding;
    await request(app.getHttpServer()).post('/other/write').set('x-request-id', 'other-write').expect(201);
    release();
    expect(await held).toBe(201);
    const stored = await db.query<{ title: string }>(`SELECT title FROM contract WHERE title LIKE 'other%'`);
    const write = await changesOf(db, 'other-write');
    const hold = await changesOf(db, 'other-hold');
    expect({
      stored: stored.map((row) => row.title),
      write: write.entitiesOmitted,
      hold: hold.entitiesOmitted,
    }).toEqual({ stored: ['other done'], write: 1, hold: undefined });
    expect(proxy.errors).toBeGreaterThan(0);
  });
});
