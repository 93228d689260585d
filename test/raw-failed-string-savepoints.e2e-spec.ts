// Savepoint commands in a string that then fails, inside a transaction: PostgreSQL ran them up to
// the failing statement, which is not known (a division by zero carries no position). What was
// held since the earliest savepoint the string rolls back to or releases is counted in
// `entitiesOmitted`, not listed; a savepoint the string sets is followed, so that recovering with
// `ROLLBACK TO` it drops what it should, and a change made after the recovery is listed once
// committed (docs/GUIDE.md, diffs).
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

type Shape = 'typeorm-rollback-to' | 'typeorm-new-savepoint' | 'raw-block-rollback-to';

@Controller('failed-savepoint')
class FailedSavepointController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { tag: string; shape: Shape }): Promise<void> {
    const failing =
      body.shape === 'typeorm-new-savepoint' ? 'SAVEPOINT retry; SELECT 1/0' : 'ROLLBACK TO SAVEPOINT s; SAVEPOINT retry; SELECT 1/0';
    if (body.shape === 'raw-block-rollback-to') {
      const runner = this.db.createQueryRunner();
      await runner.connect();
      const insert = (title: string) =>
        runner.manager.createQueryBuilder().insert().into(Contract).values({ title, counterparty: 'Retry Ltd' }).execute();
      try {
        await runner.query('BEGIN');
        await runner.query('SAVEPOINT s');
        await insert(`${body.tag} A`);
        await runner.query(failing).catch(() => runner.query('ROLLBACK TO SAVEPOINT retry'));
        await insert(`${body.tag} B`);
        await runner.query('COMMIT');
      } finally {
        await runner.release();
      }
      return;
    }
    await this.db.transaction(async (manager) => {
      await manager.query('SAVEPOINT s');
      await manager.save(Contract, { title: `${body.tag} A`, counterparty: 'Retry Ltd' });
      try {
        await manager.query(failing);
      } catch {
        await manager.query('ROLLBACK TO SAVEPOINT retry');
      }
      await manager.save(Contract, { title: `${body.tag} B`, counterparty: 'Retry Ltd' });
    });
  }
}

describe('savepoint commands in a string that then fails', () => {
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

  it.each<[Shape, string[], number]>([
    // ROLLBACK TO s ran or not: A is counted, not listed.
    ['typeorm-rollback-to', ['B'], 1],
    ['raw-block-rollback-to', ['B'], 1],
    // Only a savepoint set: A was saved before it, and commits.
    ['typeorm-new-savepoint', ['A', 'B'], 0],
  ])('%s: lists only the changes that committed', async (shape, committed, omitted) => {
    const tag = `failed-sp-${shape}`;
    await request(app.getHttpServer()).post('/failed-savepoint').set('x-request-id', tag).send({ tag, shape }).expect(201);
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1 ORDER BY title', [`${tag}%`]);
    const changes = await changesOf(db, tag);
    const listed = ((changes.entities ?? []) as { after?: { title?: unknown }; fields?: { title?: unknown[] } }[]).map(
      (change) => change.after?.title ?? change.fields?.title?.[1],
    );
    const titles = committed.map((letter) => `${tag} ${letter}`);
    expect({ stored: stored.map((row) => row.title), listed, omitted: changes.entitiesOmitted ?? 0 }).toEqual({
      stored: titles,
      listed: titles,
      omitted,
    });
  });
});
