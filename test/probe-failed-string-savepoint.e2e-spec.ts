// PROMISE (docs/GUIDE.md, Diffs): "A `SAVEPOINT` sent through `query()` (any case, after comments,
// alone or in a string of several) is followed …: `ROLLBACK TO` it drops the changes made since";
// "A string that fails is taken to have run up to its last COMMIT or ROLLBACK before its last
// statement"; a change is listed only once its transaction commits.
//
// BREAK: keptOf() keeps the statements of a failed string only up to a COMMIT or ROLLBACK; the
// savepoint commands before the failure (ROLLBACK TO, SAVEPOINT, RELEASE), which PostgreSQL ran,
// are dropped. In `ROLLBACK TO SAVEPOINT s; SAVEPOINT retry; SELECT 1/0`, PostgreSQL rolled the
// save back to `s` and set `retry`; the handler recovers with `ROLLBACK TO SAVEPOINT retry` (a
// savepoint the module never saw, so ignored) and commits.
//
// OBSERVED: the table holds only the save made after the recovery (B); the request's row lists
// A and B, A rolled back by PostgreSQL.
//
// SEVERITY: low (needs savepoint commands and a failing statement in one string).
//
// FIX GUESS: where the failure stood is not known (division by zero carries no position): when a
// failed string holds savepoint commands, take the changes held since the earliest savepoint it
// names as unknown (counted, not listed), and note the savepoints it sets, so that a later
// ROLLBACK TO one of them is followed.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Controller('failed-savepoint')
class FailedSavepointController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { tag: string }): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.query('SAVEPOINT s');
      await manager.save(Contract, { title: `${body.tag} A`, counterparty: 'Retry Ltd' });
      try {
        await manager.query('ROLLBACK TO SAVEPOINT s; SAVEPOINT retry; SELECT 1/0');
      } catch {
        await manager.query('ROLLBACK TO SAVEPOINT retry');
      }
      await manager.save(Contract, { title: `${body.tag} B`, counterparty: 'Retry Ltd' });
    });
  }
}

describe('savepoint commands in a string that then fails, inside a TypeORM transaction', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [FailedSavepointController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('lists only the changes that committed', async () => {
    const tag = 'failed-sp-1';
    await request(app.getHttpServer()).post('/failed-savepoint').set('x-request-id', tag).send({ tag }).expect(201);
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1 ORDER BY title', [`${tag}%`]);
    const changes = await changesOf(db, tag);
    const listed = ((changes.entities as { fields?: { title?: unknown[] } }[] | undefined) ?? []).map(
      (change) => change.fields?.title?.[1],
    );
    expect({ stored: stored.map((row) => row.title), listed }).toEqual({ stored: [`${tag} B`], listed: [`${tag} B`] });
  });
});
