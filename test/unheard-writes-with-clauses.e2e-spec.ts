import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

/** A legal raw write on the audited `contract` table that the reader should count. */
type Shape = 'with-search-clause' | 'with-cycle-clause' | 'unicode-escaped-name';

const SQL: Record<Shape, (from: string, to: string) => string> = {
  // PostgreSQL 14's SEARCH / CYCLE clauses stand between a recursive WITH query and its main statement.
  'with-search-clause': (from, to) =>
    `WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 2) SEARCH DEPTH FIRST BY n SET ord ` +
    `UPDATE contract SET title = '${to}' WHERE title = '${from}'`,
  'with-cycle-clause': (from, to) =>
    `WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 2) CYCLE n SET looped USING path ` +
    `UPDATE contract SET title = '${to}' WHERE title = '${from}'`,
  // U&"\0063ontract" is the identifier contract.
  'unicode-escaped-name': (from, to) => `UPDATE U&"\\0063ontract" SET title = '${to}' WHERE title = '${from}'`,
};

@Controller('with-clauses')
class WithClausesController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { from: string; to: string; shape: Shape }): Promise<void> {
    await this.db.query(SQL[body.shape](body.from, body.to));
  }
}

// docs/GUIDE.md ("Diffs"): each statement that "updates [...] an audited entity's table [...] counts
// 1 in `changes.entitiesOmitted` once committed", "in a `WITH` query too (its main statement and its
// data-modifying parts)".
describe('raw writes after a SEARCH or CYCLE clause, or on a U&"…" name, count on the request', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [WithClausesController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it.each<[string, Shape]>([
    ['a WITH RECURSIVE query with a SEARCH clause', 'with-search-clause'],
    ['a WITH RECURSIVE query with a CYCLE clause', 'with-cycle-clause'],
    ['a table named with Unicode escapes (U&"…")', 'unicode-escaped-name'],
  ])('counts the committed UPDATE of %s', async (_, shape) => {
    const tag = `clause-${shape}`;
    await db.query(`INSERT INTO contract (title, counterparty) VALUES ($1, 'Clause Ltd')`, [tag]);
    await request(app.getHttpServer())
      .post('/with-clauses')
      .set('x-request-id', tag)
      .send({ from: tag, to: `${tag} done`, shape })
      .expect(201);
    const changes = await changesOf(db, tag);
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1', [`${tag}%`]);
    expect({ omitted: changes.entitiesOmitted, stored: stored.map((row) => row.title) }).toEqual({ omitted: 1, stored: [`${tag} done`] });
  });
});
