// PROMISE (docs/GUIDE.md, Diffs): "A `SAVEPOINT` sent through `query()` (any case, after comments,
// alone or in a string of several) is followed …: `ROLLBACK TO` it drops the changes made since";
// src/audit/diffs/sql-reader.ts: names are read "as PostgreSQL folds them"; a change is listed
// only once its transaction commits.
//
// BREAK: SqlTokens folds an unquoted name with String.prototype.toLowerCase(), which lowers every
// Unicode capital; PostgreSQL (in a UTF-8 database) folds only ASCII A-Z, so `Étape` and `étape` are
// two savepoints to it and one name to the reader. `ROLLBACK TO SAVEPOINT Étape` is then applied
// to the later savepoint `étape`: the changes made between the two stay listed, though PostgreSQL
// rolled them back. (The same folding makes a Kelvin sign K read as `k`, `ÅNGSTRÖM` as
// `ångström`, and an unquoted non-ASCII table name match an entity table it is not.)
//
// OBSERVED: SAVEPOINT Étape; save A; SAVEPOINT étape; save B; ROLLBACK TO SAVEPOINT Étape; save C;
// COMMIT. The table holds only C; the request's row lists A and C (A never committed).
//
// SEVERITY: low (needs unquoted non-ASCII names differing only in case).
//
// FIX GUESS: fold only ASCII A-Z in SqlTokens (`text.replace(/[A-Z]+/g, (s) => s.toLowerCase())`),
// as PostgreSQL's downcase_identifier does for a multibyte encoding.
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
