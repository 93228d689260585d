// docs/GUIDE.md, "Diffs": a `ROLLBACK TO` a savepoint sent through `query()` drops the changes made
// since. SAVEPOINT is optional in `ROLLBACK TO [SAVEPOINT] name` and `RELEASE [SAVEPOINT] name`, and
// `savepoint` is an unreserved keyword: `ROLLBACK TO savepoint` rolls back to the savepoint named
// `savepoint` (the server says so below), and the change it undid is not listed.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Controller('named')
class NamedController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { tag: string; rollback: string }): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.save(Contract, { title: `${body.tag} kept`, counterparty: 'Named Ltd' });
      await manager.query('SAVEPOINT savepoint');
      await manager.save(Contract, { title: `${body.tag} undone`, counterparty: 'Named Ltd' });
      await manager.query(body.rollback);
    });
  }
}

describe('ROLLBACK TO a savepoint named savepoint', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [NamedController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const run = async (tag: string, rollback: string) => {
    await request(app.getHttpServer()).post('/named').set('x-request-id', tag).send({ tag, rollback }).expect(201);
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1 ORDER BY title', [`${tag} %`]);
    const changes = await changesOf(db, tag);
    return { stored: stored.map((row) => row.title), listed: ((changes.entities as unknown[]) ?? []).length };
  };

  it('is a rollback to the savepoint of that name to PostgreSQL', async () => {
    const client = await db.connect();
    try {
      for (const sql of [
        'BEGIN',
        'CREATE TEMP TABLE t (n int)',
        'INSERT INTO t VALUES (1)',
        'SAVEPOINT savepoint',
        'INSERT INTO t VALUES (2)',
      ])
        await client.query(sql);
      await client.query('ROLLBACK TO savepoint');
      expect((await client.query('SELECT n FROM t')).rows).toEqual([{ n: 1 }]);
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
  });

  it('drops the change undone by ROLLBACK TO SAVEPOINT savepoint', async () => {
    expect(await run('named-keyword', 'ROLLBACK TO SAVEPOINT savepoint')).toEqual({ stored: ['named-keyword kept'], listed: 1 });
  });

  it('drops the change undone by ROLLBACK TO savepoint', async () => {
    expect(await run('named-bare', 'ROLLBACK TO savepoint')).toEqual({ stored: ['named-bare kept'], listed: 1 });
  });
});
