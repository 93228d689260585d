import { Body, Controller, type INestApplication, Param, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md, "Before/after diffs": `changes.entities` holds the changes of audited entities a
// request made. A write by criteria or through a query builder that PostgreSQL says wrote no row
// (an `update()` or `delete()` whose criteria matched nothing, an insert that ignored its conflict)
// changed nothing, and is not listed: the existing contract is never shown "inserted" with a
// title it never had.

@Controller()
class IgnoredInsertController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Imports a contract unless one with its id exists (ON CONFLICT DO NOTHING). */
  @Post('contracts/:id/import')
  async import(@Param('id') id: string, @Body() body: { title: string; counterparty: string }): Promise<void> {
    await this.db
      .createQueryBuilder()
      .insert()
      .into(Contract)
      .values({ id, ...body })
      .orIgnore()
      .execute();
  }
}

describe('writes by criteria that matched no row', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let lease: string;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [IgnoredInsertController] });
    const made = await request(app.getHttpServer()).post('/contracts').send({ title: 'Lease', counterparty: 'Acme' });
    expect(made.status).toBe(201);
    lease = (made.body as { id: string }).id;
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('lists no update when update() by criteria matched nothing', async () => {
    const answer = await request(app.getHttpServer())
      .post('/contracts/rename-counterparty')
      .set('x-request-id', 'nothing-renamed')
      .send({ from: 'Nobody', to: 'Renamed' });
    expect(answer.status).toBe(201);
    expect(await db.query("SELECT count(*)::int AS n FROM contract WHERE counterparty = 'Renamed'")).toEqual([{ n: 0 }]);
    expect((await changesOf(db, 'nothing-renamed')).entities).toBeUndefined();
  });

  it('lists no removal when delete() by criteria matched nothing', async () => {
    const answer = await request(app.getHttpServer())
      .post('/contracts/purge')
      .set('x-request-id', 'nothing-purged')
      .send({ counterparty: 'Nobody' });
    expect(answer.status).toBe(201);
    expect(await db.query('SELECT count(*)::int AS n FROM contract')).toEqual([{ n: 1 }]);
    expect((await changesOf(db, 'nothing-purged')).entities).toBeUndefined();
  });

  it('lists no insert when an insert that ignores conflicts inserted nothing', async () => {
    const answer = await request(app.getHttpServer())
      .post(`/contracts/${lease}/import`)
      .set('x-request-id', 'nothing-imported')
      .send({ title: 'Forged title', counterparty: 'Acme' });
    expect(answer.status).toBe(201);
    expect(await db.query('SELECT title FROM contract WHERE id = $1', [lease])).toEqual([{ title: 'Lease' }]);
    expect((await changesOf(db, 'nothing-imported')).entities).toBeUndefined();
  });
});
