import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Controller('unheard')
class UnheardController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('seed')
  async seed(): Promise<void> {
    const repo = this.db.getRepository(Contract);
    await repo.save(repo.create({ title: 'seed', counterparty: 'Unheard Ltd' }), { listeners: false });
  }

  @Post('commented')
  async commented(@Body() body: { title: string }): Promise<void> {
    await this.db.query("/* controller='contracts',action='rename' */ UPDATE contract SET title = $1", [body.title]);
  }

  @Post('line-comment')
  async lineComment(@Body() body: { title: string }): Promise<void> {
    await this.db.query('-- rename every contract\nUPDATE contract SET title = $1', [body.title]);
  }

  @Post('multi-statement')
  async multiStatement(): Promise<void> {
    await this.db.query("SET LOCAL lock_timeout = '1s'; UPDATE contract SET title = 'multi'");
  }

  @Post('merge')
  async merge(@Body() body: { title: string }): Promise<void> {
    await this.db.query(
      'MERGE INTO contract AS c USING (SELECT $1::text AS title) AS s ON true WHEN MATCHED THEN UPDATE SET title = s.title',
      [body.title],
    );
  }

  @Post('schema-qualified')
  async schemaQualified(@Body() body: { title: string }): Promise<void> {
    await this.db.query('UPDATE "public"."contract" SET title = $1', [body.title]);
  }

  @Post('comment-inside')
  async commentInside(@Body() body: { title: string }): Promise<void> {
    await this.db.query('UPDATE /* tagged */ contract SET title = $1', [body.title]);
  }

  @Post('with-main')
  async withMain(@Body() body: { title: string }): Promise<void> {
    await this.db.query('WITH s AS (SELECT $1::text AS title) UPDATE contract SET title = s.title FROM s', [body.title]);
  }

  @Post('with-data-modifying')
  async withDataModifying(@Body() body: { title: string }): Promise<void> {
    await this.db.query('WITH changed AS (UPDATE contract SET title = $1 RETURNING id) SELECT count(*) FROM changed', [body.title]);
  }

  @Post('truncate-list')
  async truncateList(): Promise<void> {
    await this.db.query('TRUNCATE note, contract');
  }

  @Post('raw-block-rolled-back')
  async rawBlockRolledBack(@Body() body: { title: string }): Promise<void> {
    const runner = this.db.createQueryRunner();
    try {
      await runner.query('BEGIN');
      await runner.query('UPDATE contract SET title = $1', [body.title]);
      await runner.query('ROLLBACK');
    } finally {
      await runner.release();
    }
  }
}

// docs/GUIDE.md ("Diffs"): "each statement that inserts into, updates, deletes from or truncates an
// audited entity's table inside a request or scope, with no entity event after it, counts 1 in
// changes.entitiesOmitted once committed (none when its transaction rolls back)", read after any
// leading comments, each statement of a multi-statement string, MERGE INTO too, and a block opened
// with BEGIN as SQL that rolls back counts nothing. Comments inside a statement, writes in a WITH
// query and each table a TRUNCATE names are read too.
describe('raw writes without entity events count in entitiesOmitted however the SQL is written', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [UnheardController] });
    await request(app.getHttpServer()).post('/unheard/seed').set('x-request-id', 'pu-seed').send({}).expect(201);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const omittedAfter = async (path: string, tag: string): Promise<unknown> => {
    await request(app.getHttpServer()).post(`/unheard/${path}`).set('x-request-id', tag).send({ title: tag }).expect(201);
    return (await changesOf(db, tag)).entitiesOmitted;
  };

  it('counts a raw UPDATE that starts with a block comment (a query tag)', async () => {
    expect(await omittedAfter('commented', 'pu-commented')).toBe(1);
    expect(await db.query('SELECT title FROM contract')).toEqual([{ title: 'pu-commented' }]);
  });

  it('counts a raw UPDATE that starts with a line comment', async () => {
    expect(await omittedAfter('line-comment', 'pu-line-comment')).toBe(1);
  });

  it('counts a raw UPDATE that follows another statement in one query string', async () => {
    expect(await omittedAfter('multi-statement', 'pu-multi')).toBe(1);
    expect(await db.query('SELECT title FROM contract')).toEqual([{ title: 'multi' }]);
  });

  it('counts a raw MERGE that updates the table', async () => {
    expect(await omittedAfter('merge', 'pu-merge')).toBe(1);
    expect(await db.query('SELECT title FROM contract')).toEqual([{ title: 'pu-merge' }]);
  });

  it('counts a raw UPDATE on a schema-qualified, quoted table', async () => {
    expect(await omittedAfter('schema-qualified', 'pu-schema')).toBe(1);
  });

  it('counts nothing for a raw UPDATE its raw block rolled back', async () => {
    expect(await omittedAfter('raw-block-rolled-back', 'pu-rolled-back')).toBeUndefined();
    expect(await db.query('SELECT title FROM contract')).toEqual([{ title: 'pu-schema' }]);
  });

  it('counts a raw UPDATE with a comment between the verb and the table', async () => {
    expect(await omittedAfter('comment-inside', 'pu-comment-inside')).toBe(1);
    expect(await db.query('SELECT title FROM contract')).toEqual([{ title: 'pu-comment-inside' }]);
  });

  it('counts a raw UPDATE that is the main statement of a WITH query', async () => {
    expect(await omittedAfter('with-main', 'pu-with-main')).toBe(1);
    expect(await db.query('SELECT title FROM contract')).toEqual([{ title: 'pu-with-main' }]);
  });

  it('counts a raw UPDATE inside a WITH query', async () => {
    expect(await omittedAfter('with-data-modifying', 'pu-with-cte')).toBe(1);
    expect(await db.query('SELECT title FROM contract')).toEqual([{ title: 'pu-with-cte' }]);
  });

  it('counts a TRUNCATE whose audited table is not the first it names', async () => {
    expect(await omittedAfter('truncate-list', 'pu-truncate-list')).toBe(1);
    expect(await db.query('SELECT title FROM contract')).toEqual([]);
  });
});
