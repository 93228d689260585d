import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

/** How the handler ends the block it opened with SQL around a query builder's insert. */
type Ending = 'commit-then-begin';

@Controller('probe-split-ends')
class ProbeSplitEndsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { title: string; ending: Ending }): Promise<void> {
    const runner = this.db.createQueryRunner();
    await runner.connect();
    try {
      await runner.query('BEGIN');
      await runner.manager.createQueryBuilder().insert().into(Contract).values({ title: body.title, counterparty: 'Probe Ltd' }).execute();
      await runner.query('COMMIT; BEGIN');
      // The next block writes nothing and is rolled back: the insert committed above stays.
      await runner.query('ROLLBACK');
    } finally {
      await runner.release();
    }
  }
}

// docs/GUIDE.md ("Diffs"): "Only committed changes are reported", and a change made in a block
// TypeORM does not report "is held until the block ends, as `pg` reports the connection's status
// ... A block ended through the driver's client, or by a COMMIT that failed, is not seen: its
// changes are counted in `entitiesOmitted`, not listed". A COMMIT followed by a new BEGIN in one
// string (what `COMMIT AND CHAIN` does, which is followed) commits the change: it must be listed,
// or at least counted.
describe('probe: a block committed and reopened in one multi-statement string', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [ProbeSplitEndsController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const run = async (tag: string, ending: Ending) => {
    await request(app.getHttpServer()).post('/probe-split-ends').set('x-request-id', tag).send({ title: tag, ending }).expect(201);
    const changes = await changesOf(db, tag);
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title = $1', [tag]);
    const listed = Array.isArray(changes.entities) ? changes.entities.length : 0;
    const counted = typeof changes.entitiesOmitted === 'number' ? changes.entitiesOmitted : 0;
    return { stored: stored.length, listedOrCounted: listed + counted };
  };

  it('lists or counts the insert of a block ended by `COMMIT; BEGIN` sent as one string', async () => {
    expect(await run('probe-commit-begin', 'commit-then-begin')).toEqual({ stored: 1, listedOrCounted: 1 });
  });
});
