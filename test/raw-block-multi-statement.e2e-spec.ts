import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

/** How the handler ends (or marks) the block it opened with SQL around a query builder's insert, with strings of several statements. */
type Ending = 'commit-then-begin' | 'rollback-then-begin' | 'savepoint-in-string';

@Controller('raw-multi-statement')
class RawMultiStatementController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { title: string; ending: Ending }): Promise<void> {
    const runner = this.db.createQueryRunner();
    await runner.connect();
    const insert = () =>
      runner.manager.createQueryBuilder().insert().into(Contract).values({ title: body.title, counterparty: 'Multi Ltd' }).execute();
    try {
      if (body.ending === 'savepoint-in-string') {
        await runner.query('BEGIN; SAVEPOINT s');
        await insert();
        await runner.query('ROLLBACK TO SAVEPOINT s; COMMIT');
        return;
      }
      await runner.query('BEGIN');
      await insert();
      await runner.query(body.ending === 'commit-then-begin' ? 'COMMIT; BEGIN' : 'ROLLBACK; BEGIN');
      // The next block writes nothing: it rolls back after a COMMIT, commits after a ROLLBACK.
      await runner.query(body.ending === 'commit-then-begin' ? 'ROLLBACK' : 'COMMIT');
    } finally {
      await runner.release();
    }
  }
}

// docs/GUIDE.md ("Diffs"): "Only committed changes are reported", and a change made in a block
// TypeORM does not report is held until the block ends, each statement of a multi-statement
// string read in order: `COMMIT; BEGIN` sent as one string commits the change (it is listed,
// whatever the next block does), `ROLLBACK; BEGIN` drops it (the next block's COMMIT does not
// bring it back), and a `SAVEPOINT` set inside such a string is followed like one sent alone.
describe('a block ended or marked inside a multi-statement string', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [RawMultiStatementController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const run = async (tag: string, ending: Ending) => {
    await request(app.getHttpServer()).post('/raw-multi-statement').set('x-request-id', tag).send({ title: tag, ending }).expect(201);
    const changes = await changesOf(db, tag);
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title = $1', [tag]);
    const listed = Array.isArray(changes.entities) ? (changes.entities as { after?: { title?: string } }[]).map((e) => e.after?.title) : [];
    return { stored: stored.length, listed, omitted: changes.entitiesOmitted };
  };

  it('lists the insert of a block ended by `COMMIT; BEGIN` sent as one string', async () => {
    expect(await run('multi-commit-begin', 'commit-then-begin')).toEqual({ stored: 1, listed: ['multi-commit-begin'], omitted: undefined });
  });

  it('lists nothing for the insert of a block ended by `ROLLBACK; BEGIN` sent as one string', async () => {
    expect(await run('multi-rollback-begin', 'rollback-then-begin')).toEqual({ stored: 0, listed: [], omitted: undefined });
  });

  it('lists nothing for an insert rolled back to a SAVEPOINT set in a multi-statement string', async () => {
    expect(await run('multi-savepoint', 'savepoint-in-string')).toEqual({ stored: 0, listed: [], omitted: undefined });
  });
});
