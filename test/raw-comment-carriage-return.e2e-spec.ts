import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

/** Where a `-- comment` ended by a carriage return (PostgreSQL ends it there, as at a line feed) stands. */
type Shape = 'comment-before-write' | 'comment-before-rollback';

@Controller('raw-cr')
class CarriageReturnController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { from: string; to: string; shape: Shape }): Promise<void> {
    const update = `UPDATE contract SET title = '${body.to}' WHERE title = '${body.from}'`;
    await this.db.query(body.shape === 'comment-before-write' ? `-- tagged by the job runner\r${update}` : `${update}; -- undo\rROLLBACK`);
  }
}

// docs/GUIDE.md ("Diffs"): a raw write "counts 1 in `changes.entitiesOmitted` once committed, and
// none when it is rolled back [...] by a `ROLLBACK` later in the same string of several
// statements"; "comments anywhere in it (`/* query tags */`, `-- notes`)" are respected.
describe('a -- comment ended by a carriage return ends where PostgreSQL ends it', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [CarriageReturnController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const run = async (tag: string, shape: Shape) => {
    await db.query(`INSERT INTO contract (title, counterparty) VALUES ($1, 'Carriage Ltd')`, [tag]);
    await request(app.getHttpServer())
      .post('/raw-cr')
      .set('x-request-id', tag)
      .send({ from: tag, to: `${tag} done`, shape })
      .expect(201);
    const changes = await changesOf(db, tag);
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1', [`${tag}%`]);
    return { omitted: changes.entitiesOmitted, stored: stored.map((row) => row.title) };
  };

  it('counts the committed write that follows the comment', async () => {
    expect(await run('cr-write', 'comment-before-write')).toEqual({ omitted: 1, stored: ['cr-write done'] });
  });

  it('counts nothing for a write rolled back by the ROLLBACK that follows the comment', async () => {
    expect(await run('cr-rollback', 'comment-before-rollback')).toEqual({ omitted: undefined, stored: ['cr-rollback'] });
  });
});
