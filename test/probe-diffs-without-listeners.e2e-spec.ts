import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// Probe (attacker A3). docs/GUIDE.md: "changes made inside a mutating request, through
// repositories, the entity manager or query builders, are put on that request's audit row as
// `changes.entities`", and "Not captured: raw SQL (`query()`), many-to-many join rows, and
// DataSources initialized after start-up". Capture is a TypeORM subscriber, and TypeORM skips
// every subscriber for a write made with `{ listeners: false }` (a common option for bulk saves),
// a query builder's `callListeners(false)`, and `clear()`. Such a change is neither on the row
// nor counted (`changes.entitiesOmitted`, `diffFaults`): the trail says nothing was changed.

@Controller()
class QuietController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('quiet/save')
  async save(@Body() body: { title: string }): Promise<void> {
    const repo = this.db.getRepository(Contract);
    await repo.save(repo.create({ title: body.title, counterparty: 'Quiet Ltd' }), { listeners: false });
  }

  @Post('quiet/builder')
  async builder(@Body() body: { title: string }): Promise<void> {
    await this.db
      .createQueryBuilder()
      .update(Contract)
      .set({ title: body.title })
      .where('counterparty = :who', { who: 'Quiet Ltd' })
      .callListeners(false)
      .execute();
  }

  @Post('quiet/clear')
  async clear(): Promise<void> {
    await this.db.getRepository(Contract).clear();
  }
}

describe('probe: writes TypeORM makes without calling subscribers', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [QuietController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const traceOf = async (path: string, requestId: string): Promise<unknown> => {
    const response = await request(app.getHttpServer()).post(path).set('x-request-id', requestId).send({ title: 'Quiet' });
    expect(response.status).toBe(201);
    const changes = await changesOf(db, requestId);
    return changes.entities ?? changes.entitiesOmitted;
  };

  it('leaves a trace on the row of each change an audited entity got through a repository or a query builder', async () => {
    const saved = await traceOf('/quiet/save', 'probe-quiet-save');
    expect(await db.query('SELECT title FROM contract')).toEqual([{ title: 'Quiet' }]);
    const built = await traceOf('/quiet/builder', 'probe-quiet-builder');
    const cleared = await traceOf('/quiet/clear', 'probe-quiet-clear');
    expect(await db.query('SELECT title FROM contract')).toEqual([]);
    expect({ saved, built, cleared }).toEqual({ saved: expect.anything(), built: expect.anything(), cleared: expect.anything() });
  });
});
