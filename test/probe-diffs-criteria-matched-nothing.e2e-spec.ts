import { Body, Controller, type INestApplication, Param, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// Promise (docs/GUIDE.md, "Before/after diffs"): `changes.entities` holds the changes of audited
// entities "made inside a mutating request"; "Only committed changes are reported"; for writes by
// criteria "the change says so: `"before": "unknown"`, the values written under `after` (none
// for a delete) and `"id": null`, since TypeORM does not say which rows matched".
//
// Break: an `update()` or `delete()` by criteria that matched no row changed nothing, yet the
// request's row carries a change of the entity (op `update` with the values "written", op
// `remove`), exactly as if rows had been changed or deleted. PostgreSQL does say how many rows
// matched (the command tag's count, which `pg` gives as `rowCount` and the module's query
// follower already reads in `afterQuery`), so the trail states a write that never happened.
//
// The same holds for `insert().orIgnore()` (INSERT … ON CONFLICT DO NOTHING) that met its
// conflict: the trail shows the existing contract, by its id, "inserted" with a title it never
// had, although PostgreSQL inserted nothing (rowCount 0).
//
// Observed: `update({ counterparty: 'Nobody' }, { counterparty: 'Renamed' })` and
// `delete({ counterparty: 'Nobody' })` on a table without such a row, and an ignored insert of an
// existing id, each leave a change in `changes.entities` (see the failing expectations).
//
// Severity: low (a false "update"/"remove" of an entity on the trail, by criteria only; an
// investigator reading it cannot tell it from a real bulk change).
//
// Fix guess: carry the statement's row count to the change (the UPDATE/DELETE's `rowCount` seen
// in `afterQuery` on the same runner, right before the entity event) and drop a change by
// criteria whose count is 0, or record the count (`"rows": 0`) beside it.

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

describe('probe: writes by criteria that matched no row', () => {
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
      .set('x-request-id', 'probe-nothing-renamed')
      .send({ from: 'Nobody', to: 'Renamed' });
    expect(answer.status).toBe(201);
    expect(await db.query("SELECT count(*)::int AS n FROM contract WHERE counterparty = 'Renamed'")).toEqual([{ n: 0 }]);
    expect((await changesOf(db, 'probe-nothing-renamed')).entities).toBeUndefined();
  });

  it('lists no removal when delete() by criteria matched nothing', async () => {
    const answer = await request(app.getHttpServer())
      .post('/contracts/purge')
      .set('x-request-id', 'probe-nothing-purged')
      .send({ counterparty: 'Nobody' });
    expect(answer.status).toBe(201);
    expect(await db.query('SELECT count(*)::int AS n FROM contract')).toEqual([{ n: 1 }]);
    expect((await changesOf(db, 'probe-nothing-purged')).entities).toBeUndefined();
  });

  it('lists no insert when an insert that ignores conflicts inserted nothing', async () => {
    const answer = await request(app.getHttpServer())
      .post(`/contracts/${lease}/import`)
      .set('x-request-id', 'probe-nothing-imported')
      .send({ title: 'Forged title', counterparty: 'Acme' });
    expect(answer.status).toBe(201);
    expect(await db.query('SELECT title FROM contract WHERE id = $1', [lease])).toEqual([{ title: 'Lease' }]);
    expect((await changesOf(db, 'probe-nothing-imported')).entities).toBeUndefined();
  });
});
