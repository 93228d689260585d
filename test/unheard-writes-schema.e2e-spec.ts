import { Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Controller('other-schema')
class OtherSchemaController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(): Promise<void> {
    // `archive.contract` is a table of its own, not the audited entity's `public.contract`.
    await this.db.query(`INSERT INTO archive.contract (title) VALUES ('copied')`);
  }
}

// docs/GUIDE.md ("Diffs"): raw SQL leaves a trace: each statement that writes to an audited
// entity's table counts 1 in `changes.entitiesOmitted`; a schema-qualified name is that table only
// in the entity's own schema, so a write to a same-named table in another schema counts nothing.
describe('a raw write to a same-named table in another schema', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [OtherSchemaController] });
    await db.query('CREATE SCHEMA IF NOT EXISTS archive');
    await db.query('CREATE TABLE IF NOT EXISTS archive.contract (title text)');
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('counts nothing for a write that touched no audited entity table', async () => {
    await request(app.getHttpServer()).post('/other-schema').set('x-request-id', 'other-schema-archive').expect(201);
    const changes = await changesOf(db, 'other-schema-archive');
    expect(await db.query('SELECT count(*)::int AS n FROM public.contract')).toEqual([{ n: 0 }]);
    expect(changes.entitiesOmitted).toBeUndefined();
  });
});
