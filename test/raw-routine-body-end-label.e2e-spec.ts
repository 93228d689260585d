// A routine's SQL-standard body (`BEGIN ATOMIC …; END`) is part of its statement, and a column
// labelled `end` in it (`SELECT 1 AS end`) is no end of the body: the body's `END` is no COMMIT.
// Inside a TypeORM transaction, a committed save stays listed, and a save whose transaction rolled
// back leaves no trace.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

type Shape = 'commit' | 'rollback';

@Controller('end-label')
class EndLabelController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { tag: string; shape: Shape }): Promise<void> {
    try {
      await this.db.transaction(async (manager) => {
        await manager.save(Contract, { title: `${body.tag} a`, counterparty: 'Labels Ltd' });
        const name = `f_${body.tag.replace(/[^a-z]/g, '_')}`;
        await manager.query(`CREATE OR REPLACE FUNCTION ${name}() RETURNS integer LANGUAGE sql BEGIN ATOMIC SELECT 1 AS end; END`);
        if (body.shape === 'rollback') throw new Error('the rest of the work fails');
      });
    } catch {
      // Answers 201 either way.
    }
  }
}

describe('an SQL-standard function body with a column labelled `end`, inside a TypeORM transaction', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [EndLabelController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const run = async (tag: string, shape: Shape) => {
    await request(app.getHttpServer()).post('/end-label').set('x-request-id', tag).send({ tag, shape }).expect(201);
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1', [`${tag}%`]);
    const changes = await changesOf(db, tag);
    return {
      stored: stored.map((row) => row.title),
      entities: ((changes.entities as unknown[]) ?? []).length,
      entitiesOmitted: changes.entitiesOmitted ?? 0,
    };
  };

  it('lists the save its transaction committed', async () => {
    expect(await run('end-label-commit', 'commit')).toEqual({ stored: ['end-label-commit a'], entities: 1, entitiesOmitted: 0 });
  });

  it('traces nothing of a save its transaction rolled back', async () => {
    expect(await run('end-label-rollback', 'rollback')).toEqual({ stored: [], entities: 0, entitiesOmitted: 0 });
  });
});
