import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

/** How the handler ends the block it opened itself around a query builder's insert (which opens no transaction). */
type Ending = 'rollback' | 'commit' | 'failed-commit' | 'driver-commit' | 'typeorm-commit';

@Controller('raw-blocks')
class RawBlocksController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { title: string; ending: Ending }): Promise<void> {
    const runner = this.db.createQueryRunner();
    const client = (await runner.connect()) as { query(sql: string): Promise<unknown> };
    const insert = (title: string) =>
      runner.manager.createQueryBuilder().insert().into(Contract).values({ title, counterparty: 'Raw Ltd' }).execute();
    try {
      if (body.ending === 'driver-commit') {
        await client.query('BEGIN');
        await insert(body.title);
        await client.query('COMMIT');
        return;
      }
      await runner.query('BEGIN');
      await insert(body.title);
      if (body.ending === 'typeorm-commit') {
        await runner.startTransaction();
        await runner.manager.save(runner.manager.create(Contract, { title: `${body.title} too`, counterparty: 'Raw Ltd' }));
        await runner.commitTransaction();
        return;
      }
      if (body.ending === 'failed-commit') await runner.query('SELECT 1 / 0').catch(() => undefined);
      await runner.query(body.ending === 'rollback' ? 'ROLLBACK' : 'COMMIT');
    } finally {
      await runner.release();
    }
  }
}

// docs/GUIDE.md: changes reach the row only once their transaction commits. A block TypeORM does
// not report (opened with SQL, or through the driver) holds the changes made in it until its end
// is seen; one that ended unseen has them counted in `entitiesOmitted`, not listed.
describe('entity changes inside a transaction block TypeORM does not report', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [RawBlocksController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const run = async (tag: string, ending: Ending) => {
    await request(app.getHttpServer()).post('/raw-blocks').set('x-request-id', tag).send({ title: tag, ending }).expect(201);
    const changes = await changesOf(db, tag);
    const titles = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1 ORDER BY title', [`${tag}%`]);
    return { changes, stored: titles.map((row) => row.title) };
  };

  it('lists no change the block rolled back', async () => {
    expect(await run('raw-block-1', 'rollback')).toEqual({ changes: { body: expect.any(Object) }, stored: [] });
  });

  it('lists no change of a block whose COMMIT PostgreSQL answered with ROLLBACK', async () => {
    expect(await run('raw-block-2', 'failed-commit')).toEqual({ changes: { body: expect.any(Object) }, stored: [] });
  });

  it('lists the change once the block commits', async () => {
    const { changes, stored } = await run('raw-block-3', 'commit');
    expect(stored).toEqual(['raw-block-3']);
    expect(changes.entities).toEqual([expect.objectContaining({ type: 'Contract', op: 'insert' })]);
  });

  it('lists both changes when a transaction TypeORM opens on top commits the block', async () => {
    const { changes, stored } = await run('raw-block-4', 'typeorm-commit');
    expect(stored).toEqual(['raw-block-4', 'raw-block-4 too']);
    expect(changes.entities).toEqual([
      expect.objectContaining({ type: 'Contract', op: 'insert' }),
      expect.objectContaining({ type: 'Contract', op: 'insert' }),
    ]);
  });

  it('counts, without listing it, the change of a block ended through the driver', async () => {
    const { changes, stored } = await run('raw-block-5', 'driver-commit');
    expect(stored).toEqual(['raw-block-5']);
    expect(changes).toEqual({ body: expect.any(Object), entities: [], entitiesOmitted: 1 });
  });
});
