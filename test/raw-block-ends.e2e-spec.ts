import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

/** How the handler runs its raw block around a query builder's insert (which opens no transaction). */
type Shape =
  | 'raw-savepoint-rolled-back'
  | 'typeorm-tx-raw-savepoint-rolled-back'
  | 'multi-statement-commit'
  | 'end'
  | 'lowercase-begin'
  | 'commit-and-chain';

@Controller('raw-blocks')
class RawBlocksController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { title: string; shape: Shape }): Promise<void> {
    const runner = this.db.createQueryRunner();
    await runner.connect();
    const insert = (title: string) =>
      runner.manager.createQueryBuilder().insert().into(Contract).values({ title, counterparty: 'Block Ltd' }).execute();
    try {
      switch (body.shape) {
        case 'raw-savepoint-rolled-back':
          await runner.query('BEGIN');
          await insert(`${body.title} kept`);
          await runner.query('SAVEPOINT s1');
          await insert(`${body.title} undone`);
          await runner.query('ROLLBACK TO SAVEPOINT s1');
          await runner.query('COMMIT');
          return;
        case 'typeorm-tx-raw-savepoint-rolled-back':
          await runner.startTransaction();
          await runner.manager.save(runner.manager.create(Contract, { title: `${body.title} kept`, counterparty: 'Block Ltd' }));
          await runner.query('SAVEPOINT s1');
          await runner.manager.save(runner.manager.create(Contract, { title: `${body.title} undone`, counterparty: 'Block Ltd' }));
          await runner.query('ROLLBACK TO SAVEPOINT s1');
          await runner.commitTransaction();
          return;
        case 'multi-statement-commit':
          await runner.query('BEGIN');
          await insert(`${body.title} kept`);
          await runner.query('SELECT 1; COMMIT');
          return;
        case 'end':
          await runner.query('BEGIN');
          await insert(`${body.title} kept`);
          await runner.query('END');
          return;
        case 'commit-and-chain':
          await runner.query('BEGIN');
          await insert(`${body.title} kept`);
          await runner.query('commit and chain');
          await insert(`${body.title} undone`);
          await runner.query('ROLLBACK');
          return;
        case 'lowercase-begin':
          await runner.query('  /* tagged */ begin');
          await insert(`${body.title} kept`);
          await runner.query('commit');
          return;
      }
    } finally {
      await runner.release();
    }
  }
}

// docs/GUIDE.md ("Diffs"): "Only committed changes are reported: changes of ... a savepoint rolled
// back inside one ... never reach a row", and a change in a block TypeORM does not report "is held
// until the block ends ...: a COMMIT sent through TypeORM (query() ...) hands it over", also the
// last statement of a multi-statement string; a SAVEPOINT sent as SQL is followed, ROLLBACK TO drops.
describe('ends of a transaction block TypeORM does not report, and raw savepoints in it', () => {
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

  const run = async (tag: string, shape: Shape) => {
    await request(app.getHttpServer()).post('/raw-blocks').set('x-request-id', tag).send({ title: tag, shape }).expect(201);
    const changes = await changesOf(db, tag);
    const titles = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1 ORDER BY title', [`${tag} %`]);
    const listed = ((changes.entities ?? []) as { after?: { title?: unknown }; fields?: { title?: unknown[] } }[]).map(
      (change) => change.after?.title ?? change.fields?.title?.[1],
    );
    return { listed, omitted: changes.entitiesOmitted, stored: titles.map((row) => row.title) };
  };

  it('lists no change a raw SAVEPOINT rolled back inside a raw block', async () => {
    expect(await run('pb-1', 'raw-savepoint-rolled-back')).toEqual({ listed: ['pb-1 kept'], omitted: undefined, stored: ['pb-1 kept'] });
  });

  it('lists no change a raw SAVEPOINT rolled back inside a transaction TypeORM opened', async () => {
    expect(await run('pb-2', 'typeorm-tx-raw-savepoint-rolled-back')).toEqual({
      listed: ['pb-2 kept'],
      omitted: undefined,
      stored: ['pb-2 kept'],
    });
  });

  it('lists the change of a block whose COMMIT is sent through query() in a multi-statement string', async () => {
    expect(await run('pb-3', 'multi-statement-commit')).toEqual({ listed: ['pb-3 kept'], omitted: undefined, stored: ['pb-3 kept'] });
  });

  it('lists the change of a block ended with END', async () => {
    expect(await run('pb-4', 'end')).toEqual({ listed: ['pb-4 kept'], omitted: undefined, stored: ['pb-4 kept'] });
  });

  it('lists the change of a block opened with a commented, lowercase begin', async () => {
    expect(await run('pb-5', 'lowercase-begin')).toEqual({ listed: ['pb-5 kept'], omitted: undefined, stored: ['pb-5 kept'] });
  });

  it('lists the change of a block ended with COMMIT AND CHAIN, not those of the chained block rolled back', async () => {
    expect(await run('pb-6', 'commit-and-chain')).toEqual({ listed: ['pb-6 kept'], omitted: undefined, stored: ['pb-6 kept'] });
  });
});
