// Promise (docs/GUIDE.md, diffs in a transaction; CHANGELOG "SAVEPOINT Étape and SAVEPOINT étape
// are two savepoints, and ROLLBACK TO the first drops the changes made since it"): savepoint
// commands sent as SQL are followed as PostgreSQL names them, so a request's row lists the changes
// that committed, no change that was rolled back, and loses none that committed.
// Break: PostgreSQL cuts every name to 63 bytes (NAMEDATALEN - 1, with a NOTICE); the SQL reader
// keeps the whole name. Two names that agree on their first 63 bytes are one savepoint to
// PostgreSQL and two to the reader:
//  - `ROLLBACK TO` a longer spelling of a savepoint set before is not followed: the rolled-back
//    change stays listed (a row for work that was rolled back);
//  - two savepoints whose names differ only past byte 63: PostgreSQL rolls back to the newer, the
//    reader to the older, and drops from the row a change that committed.
// Observed: listed [A, C] for stored [C]; listed [C] for stored [A, C].
// Severity: medium (an unusual spelling, but the row then says the wrong thing, silently).
// Fix guess: in SqlTokens, cut a word's and a quoted name's text to 63 UTF-8 bytes (at a whole
// character, as pg_mbcliplen does) before it is compared.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

const STEM = `step_${'x'.repeat(58)}`; // 63 bytes: what PostgreSQL keeps of a longer name

@Controller('long-savepoints')
class LongSavepointsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('rolled-back')
  async rolledBack(@Body() body: { tag: string }): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.query(`SAVEPOINT ${STEM}_one`);
      await manager.save(Contract, { title: `${body.tag} A`, counterparty: 'Long names' });
      // The same savepoint to PostgreSQL: A is rolled back.
      await manager.query(`ROLLBACK TO SAVEPOINT ${STEM}_two`);
      await manager.save(Contract, { title: `${body.tag} C`, counterparty: 'Long names' });
    });
  }

  @Post('kept')
  async kept(@Body() body: { tag: string }): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.query(`SAVEPOINT ${STEM}_one`);
      await manager.save(Contract, { title: `${body.tag} A`, counterparty: 'Long names' });
      await manager.query(`SAVEPOINT ${STEM}_two`);
      await manager.save(Contract, { title: `${body.tag} B`, counterparty: 'Long names' });
      // PostgreSQL rolls back to the newer savepoint of the (cut) name: only B is rolled back.
      await manager.query(`ROLLBACK TO SAVEPOINT ${STEM}_one`);
      await manager.save(Contract, { title: `${body.tag} C`, counterparty: 'Long names' });
    });
  }
}

describe('savepoints sent as SQL whose names are longer than 63 bytes', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [LongSavepointsController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  async function storedAndListed(tag: string) {
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1 ORDER BY title', [`${tag} %`]);
    const changes = await changesOf(db, tag);
    const listed = ((changes.entities as { fields?: { title?: unknown[] } }[] | undefined) ?? []).map(
      (change) => change.fields?.title?.[1],
    );
    return { stored: stored.map((row) => row.title), listed };
  }

  it('lists no change rolled back to a savepoint named with a longer spelling', async () => {
    const tag = 'long-1';
    await request(app.getHttpServer()).post('/long-savepoints/rolled-back').set('x-request-id', tag).send({ tag }).expect(201);
    expect(await storedAndListed(tag)).toEqual({ stored: [`${tag} C`], listed: [`${tag} C`] });
  });

  it('keeps a committed change when two savepoint names differ only past their 63rd byte', async () => {
    const tag = 'long-2';
    await request(app.getHttpServer()).post('/long-savepoints/kept').set('x-request-id', tag).send({ tag }).expect(201);
    expect(await storedAndListed(tag)).toEqual({ stored: [`${tag} A`, `${tag} C`], listed: [`${tag} A`, `${tag} C`] });
  });
});
