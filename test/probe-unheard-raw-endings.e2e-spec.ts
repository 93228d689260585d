import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

/** How the handler runs one raw `UPDATE contract` that no entity event answers. */
type Shape = 'commit-and-chain' | 'rollback-and-chain' | 'one-string-rolled-back' | 'savepoint-in-transaction' | 'savepoint-in-raw-block';

@Controller('probe-unheard')
class ProbeUnheardController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { from: string; to: string; shape: Shape }): Promise<void> {
    const update = `UPDATE contract SET title = '${body.to}' WHERE title = '${body.from}'`;
    if (body.shape === 'one-string-rolled-back') {
      await this.db.query(`BEGIN; ${update}; ROLLBACK`);
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

// docs/GUIDE.md ("Diffs"): a raw SQL write on an audited entity's table "counts 1 in
// `changes.entitiesOmitted` once committed (none when its transaction rolls back, a block opened
// with `BEGIN` sent as SQL included)"; `COMMIT AND CHAIN` hands a raw block's work over, and a
// `SAVEPOINT` sent through `query()` is followed: `ROLLBACK TO` it drops what was made since.
describe('probe: raw writes whose block ends in a legal but unusual way', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [ProbeUnheardController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const run = async (tag: string, shape: Shape) => {
    await db.query(`INSERT INTO contract (title, counterparty) VALUES ($1, 'Probe Ltd')`, [tag]);
    await request(app.getHttpServer())
      .post('/probe-unheard')
      .set('x-request-id', tag)
      .send({ from: tag, to: `${tag} done`, shape })
      .expect(201);
    const changes = await changesOf(db, tag);
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1', [`${tag}%`]);
    return { omitted: changes.entitiesOmitted, stored: stored.map((row) => row.title) };
  };

  it('counts a raw write committed by COMMIT AND CHAIN when the chained block then rolls back', async () => {
    expect(await run('probe-chain', 'commit-and-chain')).toEqual({ omitted: 1, stored: ['probe-chain done'] });
  });

  it('counts nothing for a raw write rolled back by ROLLBACK AND CHAIN when the chained block then commits', async () => {
    expect(await run('probe-rollback-chain', 'rollback-and-chain')).toEqual({ omitted: undefined, stored: ['probe-rollback-chain'] });
  });

  it('counts nothing for a raw write rolled back inside one multi-statement string', async () => {
    expect(await run('probe-one-string', 'one-string-rolled-back')).toEqual({ omitted: undefined, stored: ['probe-one-string'] });
  });

  it('counts nothing for a raw write rolled back to a SAVEPOINT sent as SQL in a TypeORM transaction', async () => {
    expect(await run('probe-sp-tx', 'savepoint-in-transaction')).toEqual({ omitted: undefined, stored: ['probe-sp-tx'] });
  });

  it('counts nothing for a raw write rolled back to a SAVEPOINT sent as SQL in a raw block', async () => {
    expect(await run('probe-sp-raw', 'savepoint-in-raw-block')).toEqual({ omitted: undefined, stored: ['probe-sp-raw'] });
  });
});
