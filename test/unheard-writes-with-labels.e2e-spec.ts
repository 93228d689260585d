// A `WITH` query that reads an audited table and names a column or a label `delete` (`AS delete`,
// `c.title AS delete`) writes nothing: no raw write is counted for it in `entitiesOmitted`, which
// stays a floor.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Controller('labelled-reads')
class LabelledReadsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { tag: string }): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.save(Contract, { title: `${body.tag} a`, counterparty: 'Readers Ltd' });
      await manager.query('WITH recent AS (SELECT 1) SELECT count(*) AS delete FROM contract');
      await manager.query('WITH recent AS (SELECT 1) SELECT c.id, c.title AS delete FROM contract c');
    });
  }
}

describe('WITH queries that read a label named delete, inside a request', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [LabelledReadsController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('counts no raw write for them', async () => {
    const tag = 'labelled-1';
    await request(app.getHttpServer()).post('/labelled-reads').set('x-request-id', tag).send({ tag }).expect(201);
    const changes = await changesOf(db, tag);
    expect({ entities: ((changes.entities as unknown[]) ?? []).length, entitiesOmitted: changes.entitiesOmitted ?? 0 }).toEqual({
      entities: 1,
      entitiesOmitted: 0,
    });
  });
});
