import { Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource, type QueryRunner } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

/**
 * The first route ends its raw block through the driver (unseen) and releases its runner; the pool
 * then hands the same connection to other work that opens a block of its own (another request, as
 * under load), still open when the first request's row is made. The second route ends that block.
 */
@Controller('pooled')
class PooledController {
  private other: QueryRunner | undefined;

  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('first')
  async first(): Promise<void> {
    const runner = this.db.createQueryRunner();
    const client = (await runner.connect()) as { query(sql: string): Promise<unknown> };
    await runner.query('BEGIN');
    await runner.manager.createQueryBuilder().insert().into(Contract).values({ title: 'pooled', counterparty: 'Pool Ltd' }).execute();
    await client.query('COMMIT');
    await runner.release();
    const other = this.db.createQueryRunner();
    const reused = await other.connect();
    if (reused !== client) throw new Error('the pool handed another connection: the test needs the same one');
    await other.query('BEGIN');
    this.other = other;
  }

  @Post('second')
  async second(): Promise<void> {
    await this.other?.query('ROLLBACK');
    await this.other?.release();
    this.other = undefined;
  }
}

// docs/GUIDE.md ("Diffs"): "A block ended through the driver's client is not seen: its changes are
// counted in entitiesOmitted, not listed". The count must not depend on what the pooled connection
// does after the runner was released: a released runner's block is counted, its status unread.
describe('a raw block ended unseen, its connection reused by another block: the change is counted', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [PooledController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('counts the committed change on the first request’s row', async () => {
    await request(app.getHttpServer()).post('/pooled/first').set('x-request-id', 'pp-1').expect(201);
    const changes = await changesOf(db, 'pp-1');
    await request(app.getHttpServer()).post('/pooled/second').set('x-request-id', 'pp-2').expect(201);
    expect(await db.query('SELECT title FROM contract')).toEqual([{ title: 'pooled' }]);
    expect(changes).toEqual({ body: expect.any(Object), entities: [], entitiesOmitted: 1 });
  });
});
