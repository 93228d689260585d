import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { auditScope } from '../src/audit';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

/** A handler that calls a service written for jobs: it wraps its writes in auditScope(). */
@Controller('scoped-writes')
class ScopedWritesController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('seed')
  async seed(): Promise<void> {
    const repo = this.db.getRepository(Contract);
    await repo.save(repo.create({ title: 'seed', counterparty: 'Scoped Ltd' }));
  }

  @Post('raw')
  async raw(@Body() body: { title: string }): Promise<void> {
    await auditScope(() => this.db.query('UPDATE contract SET title = $1', [body.title]));
  }

  @Post('quiet-in-transaction')
  async quietInTransaction(@Body() body: { title: string }): Promise<void> {
    await auditScope(() =>
      this.db.transaction(async (manager) => {
        await manager.createQueryBuilder().update(Contract).set({ title: body.title }).callListeners(false).execute();
      }),
    );
  }
}

// docs/GUIDE.md ("Diffs"): inside a request, auditScope() is the request's scope, and a raw SQL
// write or one without listeners on an audited table made in it counts 1 in the request's
// changes.entitiesOmitted once committed (it was counted on the scope, whose count no row took).
describe("writes without entity events inside auditScope() in a request count on the request's row", () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [ScopedWritesController] });
    await request(app.getHttpServer()).post('/scoped-writes/seed').set('x-request-id', 'ps-seed').send({}).expect(201);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const omittedAfter = async (path: string, tag: string): Promise<unknown> => {
    await request(app.getHttpServer()).post(`/scoped-writes/${path}`).set('x-request-id', tag).send({ title: tag }).expect(201);
    expect(await db.query('SELECT title FROM contract')).toEqual([{ title: tag }]);
    return (await changesOf(db, tag)).entitiesOmitted;
  };

  it("counts a raw UPDATE made in the scope on the request's row", async () => {
    expect(await omittedAfter('raw', 'ps-raw')).toBe(1);
  });

  it("counts a committed write without listeners made in the scope on the request's row", async () => {
    expect(await omittedAfter('quiet-in-transaction', 'ps-quiet')).toBe(1);
  });
});
