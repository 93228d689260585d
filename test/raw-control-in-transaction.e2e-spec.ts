import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

/** What the handler sends as SQL inside a `DataSource.transaction()` after saving one contract. */
type Shape = 'commit-midway' | 'rollback-midway';

@Controller('raw-control')
class RawControlController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async run(@Body() body: { tag: string; shape: Shape }): Promise<void> {
    try {
      await this.db.transaction(async (manager) => {
        await manager.save(Contract, { title: `${body.tag} a`, counterparty: 'Control Ltd' });
        if (body.shape === 'rollback-midway') {
          // PostgreSQL rolls the save back here; TypeORM's COMMIT afterwards finds no block (a warning).
          await manager.query('ROLLBACK');
          return;
        }
        // A batch committed part way: the first save is committed here, whatever happens next.
        await manager.query('COMMIT; BEGIN');
        await manager.save(Contract, { title: `${body.tag} b`, counterparty: 'Control Ltd' });
        throw new Error('the rest of the batch fails');
      });
    } catch {
      // The handler answers 201 either way.
    }
  }
}

// docs/GUIDE.md ("Diffs"): a change is listed when its transaction commits, and a raw SQL write
// "counts 1 in `changes.entitiesOmitted` once committed, and none when it is rolled back". A
// committed change must reach the request's row (listed or counted); a rolled-back one must not.
describe('COMMIT or ROLLBACK sent as SQL inside a TypeORM transaction ends what it held there', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [RawControlController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const run = async (tag: string, shape: Shape) => {
    await request(app.getHttpServer()).post('/raw-control').set('x-request-id', tag).send({ tag, shape }).expect(201);
    const changes = await changesOf(db, tag);
    const listed = (changes.entities as unknown[] | undefined) ?? [];
    const stored = await db.query<{ title: string }>('SELECT title FROM contract WHERE title LIKE $1 ORDER BY title', [`${tag}%`]);
    return { traced: listed.length + ((changes.entitiesOmitted as number | undefined) ?? 0), stored: stored.map((row) => row.title) };
  };

  it('traces the save committed by COMMIT; BEGIN sent as SQL when the transaction then rolls back', async () => {
    expect(await run('commit-midway', 'commit-midway')).toEqual({ traced: 1, stored: ['commit-midway a'] });
  });

  it('lists no save rolled back by ROLLBACK sent as SQL before TypeORM commits', async () => {
    expect(await run('rollback-midway', 'rollback-midway')).toEqual({ traced: 0, stored: [] });
  });
});
