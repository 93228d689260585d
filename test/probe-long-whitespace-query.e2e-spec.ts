import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Controller('probe-padded-query')
class ProbePaddedQueryController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { spaces: number }): Promise<{ length: number }> {
    // A text constant with a long run of blanks (a padded field, an indented document) written into the SQL.
    const rows = (await this.db.query(`SELECT length('${' '.repeat(body.spaces)}x') AS length`)) as { length: number }[];
    return { length: rows[0].length };
  }
}

// docs/GUIDE.md ("Diffs"): "Capture never delays or fails your write. It is synchronous: on a
// DataSource with audited entities ... an event ... costs a map lookup (15–40 ns)". Every query on
// such a DataSource goes through the savepoint matcher (`savepoint-sql.ts` `statementOf()`), whose
// trailing-`;` regex `/\s*;?\s*$/` backtracks cubically on a run of blanks that does not end the
// query: 2,000 blanks block the event loop for about 2 s, 4,000 for about 15 s (measured alone,
// on this machine); the same query takes milliseconds in PostgreSQL.
describe('probe: a query with a long run of blanks on a DataSource with audited entities', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [ProbePaddedQueryController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('answers a query with 3,000 blanks in a text constant without stalling the process for seconds', async () => {
    const started = Date.now();
    const response = await request(app.getHttpServer()).post('/probe-padded-query').send({ spaces: 3000 }).expect(201);
    const elapsed = Date.now() - started;
    expect(response.body).toEqual({ length: 3001 });
    // Without the matcher this takes a few milliseconds; with it, several seconds of blocked event loop.
    expect(elapsed).toBeLessThan(2000);
  }, 120_000);
});
