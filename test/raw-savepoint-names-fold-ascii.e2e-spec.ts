// PostgreSQL folds only the ASCII capitals of an unquoted name (in a UTF-8 database): `Étape` and
// `étape` are two savepoints. `ROLLBACK TO SAVEPOINT Étape` sent as SQL drops what was saved since
// `Étape`, not since the later `étape`, and the request's row lists only the change that committed.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Controller('steps-fr')
class StepsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { tag: string }): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.query('SAVEPOINT Étape');
      await manager.save(Contract, { title: `${body.tag} A`, counterparty: 'Étapes SA' });
      await manager.query('SAVEPOINT étape');
      await manager.save(Contract, { title: `${body.tag} B`, counterparty: 'Étapes SA' });
      // Back to the first savepoint: A and B are rolled back.
      await manager.query('ROLLBACK TO SAVEPOINT Étape');
      await manager.save(Contract, { title: `${body.tag} C`, counterparty: 'Étapes SA' });
    });
  }
}

describe('savepoints sent as SQL whose names differ only in a non-ASCII capital', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [StepsController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('lists only the change that committed', async () => {
    const tag = 'etape-1';
    await request(app.getHttpServer()).post('/steps-fr').set('x-request-id', tag).send({ tag }).expect(201);
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1 ORDER BY title', [`${tag}%`]);
    const changes = await changesOf(db, tag);
    const listed = ((changes.entities as { fields?: { title?: unknown[] } }[] | undefined) ?? []).map(
      (change) => change.fields?.title?.[1],
    );
    expect({ stored: stored.map((row) => row.title), listed }).toEqual({ stored: [`${tag} C`], listed: [`${tag} C`] });
  });
});
