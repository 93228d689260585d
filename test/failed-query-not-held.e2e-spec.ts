// A failed query reaches its caller as soon as `pg` has the error, whatever comes after it: the
// diffs follower waits for the server's ReadyForQuery (the transaction status after the query)
// only for a failed string that holds a transaction command, or a block it follows (docs/GUIDE.md,
// "before/after diffs"). Here a proxy holds every byte after an error, as a network partition
// that begins right after it would: `pg` alone rejects at once, and so does a TypeORM insert on a
// table that is not audited, outside any request.
import { type INestApplication } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import { Client } from 'pg';
import { type DataSource } from 'typeorm';
import { eventually } from './support/app';
import { AnswerFaultProxy } from './support/answer-fault-proxy';
import { startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

describe('a failed query whose ReadyForQuery does not come (a partition right after the error)', () => {
  let db: TestPostgres;
  let proxy: AnswerFaultProxy;
  let app: INestApplication<Server>;
  let proxyUrl: string;

  beforeAll(async () => {
    db = await TestPostgres.start();
    proxy = await AnswerFaultProxy.start(db.port, 'hold');
    proxyUrl = db.url().replace(`:${db.port}/`, `:${proxy.port}/`);
    app = await startDiffsApp(db, { mode: 'sync', writeTimeoutMs: 30_000 }, { appUrl: proxyUrl });
  }, 60_000);

  afterAll(async () => {
    proxy?.release();
    await app?.close();
    await proxy?.stop();
    await db?.stop();
  });

  /** Runs `query` while the proxy holds what follows each error; whether its rejection came before the proxy let the rest through. */
  async function rejectedWhileHeld(query: () => Promise<unknown>): Promise<boolean> {
    const errorsBefore = proxy.errors;
    let rejected = false;
    const settled = query().then(
      () => undefined,
      () => {
        rejected = true;
      },
    );
    try {
      await eventually(() => proxy.errors > errorsBefore, 10_000, 'the error to reach the app');
      await eventually(() => rejected, 10_000, 'the failed query to reject while its ReadyForQuery is held');
      return true;
    } catch {
      return false;
    } finally {
      proxy.release();
      await settled;
    }
  }

  it('is rejected at once by pg itself', async () => {
    const client = new Client({ connectionString: proxyUrl });
    await client.connect();
    try {
      expect(await rejectedWhileHeld(() => client.query('SELECT 1/0'))).toBe(true);
    } finally {
      await client.end();
    }
  });

  it('is rejected at once through TypeORM, outside any request, on a table that is not audited', async () => {
    const dataSource = app.get<DataSource>(getDataSourceToken());
    const runner = dataSource.createQueryRunner();
    try {
      expect(await rejectedWhileHeld(() => runner.query('INSERT INTO note (text) VALUES ((1/0)::text)'))).toBe(true);
    } finally {
      await runner.release();
    }
  }, 60_000);
});
