// PostgreSQL cuts every name to its first 63 bytes (NAMEDATALEN - 1, at a whole character): two
// savepoint names that agree on their first 63 bytes are one savepoint. `ROLLBACK TO` a longer
// spelling of a savepoint set before drops what was saved since it, and of two savepoints whose
// names differ only past byte 63 the newer is the one rolled back to: the request's row lists the
// changes that committed, no more and no fewer.
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
