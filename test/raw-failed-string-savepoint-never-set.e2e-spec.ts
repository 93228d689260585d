// A string that fails runs up to the statement that failed: the statements after it never run.
// A `SAVEPOINT step` at the end of a failed string (`SELECT 1/0; SAVEPOINT step`) is not set, so
// the recovery `ROLLBACK TO SAVEPOINT step` goes back to the `step` set before it, and drops the
// change saved since: the request's row lists only the change that committed.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Controller('moved-savepoint')
class MovedSavepointController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { tag: string }): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.query('SAVEPOINT step');
      await manager.save(Contract, { title: `${body.tag} A`, counterparty: 'Steps Ltd' });
      try {
        // The work fails at its first statement: the savepoint is not moved.
        await manager.query('SELECT 1/0; SAVEPOINT step');
      } catch {
        // Back to the only savepoint named step: A is rolled back.
        await manager.query('ROLLBACK TO SAVEPOINT step');
      }
      await manager.save(Contract, { title: `${body.tag} B`, counterparty: 'Steps Ltd' });
    });
  }
}

describe('a savepoint named again after the statement that fails, in a string', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [MovedSavepointController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('lists no change rolled back to the savepoint that was set', async () => {
    const tag = 'moved-1';
    await request(app.getHttpServer()).post('/moved-savepoint').set('x-request-id', tag).send({ tag }).expect(201);
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1 ORDER BY title', [`${tag} %`]);
    const changes = await changesOf(db, tag);
    const listed = ((changes.entities as { fields?: { title?: unknown[] } }[] | undefined) ?? []).map(
      (change) => change.fields?.title?.[1],
    );
    expect({ stored: stored.map((row) => row.title), listed }).toEqual({ stored: [`${tag} B`], listed: [`${tag} B`] });
  });
});
