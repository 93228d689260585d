// A raw write sent as COPY leaves a trace as any other raw write does (docs/GUIDE.md, "Diffs"):
// `COPY (DELETE … RETURNING …) TO STDOUT` and `COPY (UPDATE … RETURNING …) TO STDOUT` write what
// the statement in the parentheses writes, and `COPY table FROM …` inserts into the table; each
// counts 1 in `changes.entitiesOmitted` of the request that sent it through `query()`.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Controller('copy')
class CopyController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('seed')
  async seed(@Body() body: { title: string }): Promise<void> {
    const repo = this.db.getRepository(Contract);
    await repo.save(repo.create({ title: body.title, counterparty: 'Copy Ltd' }), { listeners: false });
  }

  @Post('run')
  async run(@Body() body: { sql: string }): Promise<void> {
    await this.db.query(body.sql);
  }
}

describe('a raw write sent as COPY leaves a trace on the request row', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [CopyController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const seed = (tag: string) =>
    request(app.getHttpServer()).post('/copy/seed').set('x-request-id', `${tag}-seed`).send({ title: tag }).expect(201);

  const run = async (tag: string, sql: string) => {
    await request(app.getHttpServer()).post('/copy/run').set('x-request-id', tag).send({ sql }).expect(201);
    const titles = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1 ORDER BY title', [`${tag}%`]);
    return { titles: titles.map((row) => row.title), entitiesOmitted: (await changesOf(db, tag)).entitiesOmitted };
  };

  it('counts the same DELETE … RETURNING sent on its own', async () => {
    await seed('copy-plain');
    expect(await run('copy-plain', "DELETE FROM contract WHERE title = 'copy-plain' RETURNING id")).toEqual({
      titles: [],
      entitiesOmitted: 1,
    });
  });

  it('counts COPY (DELETE FROM an audited table RETURNING …) TO STDOUT', async () => {
    await seed('copy-delete');
    expect(await run('copy-delete', "COPY (DELETE FROM contract WHERE title = 'copy-delete' RETURNING id) TO STDOUT")).toEqual({
      titles: [],
      entitiesOmitted: 1,
    });
  });

  it('counts COPY (UPDATE an audited table RETURNING …) TO STDOUT', async () => {
    await seed('copy-update');
    expect(
      await run(
        'copy-update',
        "COPY (UPDATE contract SET title = 'copy-update changed' WHERE title = 'copy-update' RETURNING id) TO STDOUT",
      ),
    ).toEqual({ titles: ['copy-update changed'], entitiesOmitted: 1 });
  });

  it('counts COPY into an audited table FROM PROGRAM', async () => {
    expect(
      await run('copy-from', 'COPY contract (title, counterparty) FROM PROGRAM \'printf "copy-from added,Copy Ltd\\n"\' WITH (FORMAT csv)'),
    ).toEqual({ titles: ['copy-from added'], entitiesOmitted: 1 });
  });
});
