// docs/GUIDE.md, "Diffs": the `EXECUTE` of a statement `PREPARE`d as a write on the same connection
// counts 1 in `entitiesOmitted`, and no change is stated that was not made. Of a string that failed,
// which statements ran is not known: a PREPARE of a name that exists (refused, 42P05), a DEALLOCATE
// or DISCARD ALL that may not have run leave what the name runs as it was.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Controller('prepared')
class PreparedController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('seed')
  async seed(@Body() body: { title: string }): Promise<void> {
    const repo = this.db.getRepository(Contract);
    await repo.save(repo.create({ title: body.title, counterparty: 'Prepared Ltd' }), { listeners: false });
  }

  /** On one connection: `before` (each may fail, as the caller expects), then `run`. */
  @Post('run')
  async run(@Body() body: { before: string[]; run: string }): Promise<{ failed: string[] }> {
    const runner = this.db.createQueryRunner();
    const failed: string[] = [];
    try {
      for (const sql of body.before) {
        await runner.query(sql).catch((error: { driverError?: { code?: string } }) => failed.push(error.driverError?.code ?? 'error'));
      }
      await runner.query(body.run);
    } finally {
      await runner.query('DEALLOCATE ALL');
      await runner.release();
    }
    return { failed };
  }
}

describe('EXECUTE of a statement prepared as a write, after a PREPARE or DEALLOCATE that failed', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [PreparedController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const seed = (title: string) =>
    request(app.getHttpServer()).post('/prepared/seed').set('x-request-id', `${title}-seed`).send({ title }).expect(201);

  const run = async (tag: string, before: string[], sql: string) => {
    const response = await request(app.getHttpServer())
      .post('/prepared/run')
      .set('x-request-id', tag)
      .send({ before, run: sql })
      .expect(201);
    const left = await db.query<{ title: string }>('SELECT title FROM contract WHERE title = $1', [tag]);
    return {
      failed: (response.body as { failed: string[] }).failed,
      left: left.length,
      entitiesOmitted: (await changesOf(db, tag)).entitiesOmitted,
    };
  };

  it('counts the EXECUTE of a prepared DELETE (the reader follows PREPARE … EXECUTE)', async () => {
    await seed('prep-plain');
    expect(await run('prep-plain', ["PREPARE purge AS DELETE FROM contract WHERE title = 'prep-plain'"], 'EXECUTE purge')).toEqual({
      failed: [],
      left: 0,
      entitiesOmitted: 1,
    });
  });

  it('still counts it after a PREPARE of the same name that PostgreSQL refused (already exists)', async () => {
    await seed('prep-refused');
    expect(
      await run(
        'prep-refused',
        ["PREPARE purge AS DELETE FROM contract WHERE title = 'prep-refused'", 'PREPARE purge AS SELECT 1'],
        'EXECUTE purge',
      ),
    ).toEqual({ failed: ['42P05'], left: 0, entitiesOmitted: 1 });
  });

  it('still counts it after a DEALLOCATE that never ran (an earlier statement of its string failed)', async () => {
    await seed('prep-dealloc');
    expect(
      await run(
        'prep-dealloc',
        ["PREPARE purge AS DELETE FROM contract WHERE title = 'prep-dealloc'", 'SELECT 1/0; DEALLOCATE purge'],
        'EXECUTE purge',
      ),
    ).toEqual({ failed: ['22012'], left: 0, entitiesOmitted: 1 });
  });

  it('still counts it after a DISCARD ALL that PostgreSQL refused inside a block', async () => {
    await seed('prep-discard');
    expect(
      await run(
        'prep-discard',
        ["PREPARE purge AS DELETE FROM contract WHERE title = 'prep-discard'", 'BEGIN', 'DISCARD ALL', 'ROLLBACK'],
        'EXECUTE purge',
      ),
    ).toEqual({ failed: ['25001'], left: 0, entitiesOmitted: 1 });
  });

  it('counts nothing for the EXECUTE of a read after a refused PREPARE of a write under its name', async () => {
    await seed('prep-read');
    expect(
      await run(
        'prep-read',
        ['PREPARE look AS SELECT 1', "PREPARE look AS DELETE FROM contract WHERE title = 'prep-read'"],
        'EXECUTE look',
      ),
    ).toEqual({ failed: ['42P05'], left: 1, entitiesOmitted: undefined });
  });
});
