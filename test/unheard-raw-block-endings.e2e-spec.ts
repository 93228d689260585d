import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

/** How the handler runs one raw `UPDATE contract` that no entity event answers. */
type Shape =
  | 'commit-and-chain'
  | 'rollback-and-chain'
  | 'one-string-rolled-back'
  | 'one-string-no-begin-rolled-back'
  | 'one-string-savepoint-rolled-back'
  | 'one-string-commit-and-chain'
  | 'savepoint-in-transaction'
  | 'savepoint-in-raw-block';

/** The whole block as one string: PostgreSQL runs its statements in order. */
const ONE_STRING: Partial<Record<Shape, (update: string) => string>> = {
  'one-string-rolled-back': (update) => `BEGIN; ${update}; ROLLBACK`,
  // Outside a block, a multi-statement string runs as one implicit block, which its ROLLBACK ends.
  'one-string-no-begin-rolled-back': (update) => `${update}; ROLLBACK`,
  'one-string-savepoint-rolled-back': (update) => `BEGIN; SAVEPOINT s; ${update}; ROLLBACK TO SAVEPOINT s; COMMIT`,
  'one-string-commit-and-chain': (update) => `BEGIN; ${update}; COMMIT AND CHAIN; ROLLBACK`,
};

@Controller('raw-endings')
class RawEndingsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { from: string; to: string; shape: Shape }): Promise<void> {
    const update = `UPDATE contract SET title = '${body.to}' WHERE title = '${body.from}'`;
    const oneString = ONE_STRING[body.shape];
    if (oneString) {
      await this.db.query(oneString(update));
      return;
    }
    if (body.shape === 'savepoint-in-transaction') {
      await this.db.transaction(async (manager) => {
        await manager.query('SAVEPOINT s');
        await manager.query(update);
        await manager.query('ROLLBACK TO SAVEPOINT s');
      });
      return;
    }
    const runner = this.db.createQueryRunner();
    await runner.connect();
    try {
      await runner.query('BEGIN');
      if (body.shape === 'commit-and-chain') {
        await runner.query(update);
        // The update commits here; the chained block that follows writes nothing and rolls back.
        await runner.query('COMMIT AND CHAIN');
        await runner.query('ROLLBACK');
      } else if (body.shape === 'rollback-and-chain') {
        await runner.query(update);
        // The update is rolled back here; the chained block that follows writes nothing and commits.
        await runner.query('ROLLBACK AND CHAIN');
        await runner.query('COMMIT');
      } else {
        await runner.query('SAVEPOINT s');
        await runner.query(update);
        await runner.query('ROLLBACK TO SAVEPOINT s');
        await runner.query('COMMIT');
      }
    } finally {
      await runner.release();
    }
  }
}

// docs/GUIDE.md ("Diffs"): a raw SQL write on an audited entity's table counts 1 in
// `changes.entitiesOmitted` once committed, and none when it is rolled back, however its block
// ends: `COMMIT AND CHAIN` commits it (whatever the chained block does next), `ROLLBACK AND CHAIN`
// drops it, a `ROLLBACK` in the same multi-statement string drops it, and `ROLLBACK TO` a
// `SAVEPOINT` sent as SQL (in a raw block or in a TypeORM transaction) drops what was written since.
describe('a raw write counts once committed, however its block ends', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [RawEndingsController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const run = async (tag: string, shape: Shape) => {
    await db.query(`INSERT INTO contract (title, counterparty) VALUES ($1, 'Endings Ltd')`, [tag]);
    await request(app.getHttpServer())
      .post('/raw-endings')
      .set('x-request-id', tag)
      .send({ from: tag, to: `${tag} done`, shape })
      .expect(201);
    const changes = await changesOf(db, tag);
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1', [`${tag}%`]);
    return { omitted: changes.entitiesOmitted, stored: stored.map((row) => row.title) };
  };

  it('counts a raw write committed by COMMIT AND CHAIN when the chained block then rolls back', async () => {
    expect(await run('end-chain', 'commit-and-chain')).toEqual({ omitted: 1, stored: ['end-chain done'] });
  });

  it('counts nothing for a raw write rolled back by ROLLBACK AND CHAIN when the chained block then commits', async () => {
    expect(await run('end-rollback-chain', 'rollback-and-chain')).toEqual({ omitted: undefined, stored: ['end-rollback-chain'] });
  });

  it('counts nothing for a raw write rolled back inside one multi-statement string', async () => {
    expect(await run('end-one-string', 'one-string-rolled-back')).toEqual({ omitted: undefined, stored: ['end-one-string'] });
  });

  it('counts nothing for a raw write rolled back in a multi-statement string without BEGIN', async () => {
    expect(await run('end-no-begin', 'one-string-no-begin-rolled-back')).toEqual({ omitted: undefined, stored: ['end-no-begin'] });
  });

  it('counts nothing for a raw write rolled back to a SAVEPOINT set in the same multi-statement string', async () => {
    expect(await run('end-one-string-sp', 'one-string-savepoint-rolled-back')).toEqual({
      omitted: undefined,
      stored: ['end-one-string-sp'],
    });
  });

  it('counts a raw write committed by COMMIT AND CHAIN in a multi-statement string that then rolls back', async () => {
    expect(await run('end-one-string-chain', 'one-string-commit-and-chain')).toEqual({ omitted: 1, stored: ['end-one-string-chain done'] });
  });

  it('counts nothing for a raw write rolled back to a SAVEPOINT sent as SQL in a TypeORM transaction', async () => {
    expect(await run('end-sp-tx', 'savepoint-in-transaction')).toEqual({ omitted: undefined, stored: ['end-sp-tx'] });
  });

  it('counts nothing for a raw write rolled back to a SAVEPOINT sent as SQL in a raw block', async () => {
    expect(await run('end-sp-raw', 'savepoint-in-raw-block')).toEqual({ omitted: undefined, stored: ['end-sp-raw'] });
  });
});
