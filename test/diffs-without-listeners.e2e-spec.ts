import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md ("Diffs"): a write TypeORM makes on an audited entity's table without calling
// subscribers (`{ listeners: false }`, a query builder's `callListeners(false)`, `clear()`) or by
// raw SQL leaves a trace: each such statement counts 1 in `changes.entitiesOmitted` of the
// request's row once it is committed (none when its transaction rolls back). A write TypeORM
// reports by an event is a change as before, and is not counted.

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

  @Post('quiet/raw')
  async raw(@Body() body: { title: string }): Promise<void> {
    await this.db.query('UPDATE contract SET title = $1', [body.title]);
  }

  @Post('quiet/delete-in-transaction')
  async deleteInTransaction(): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager
        .createQueryBuilder()
        .delete()
        .from(Contract)
        .where('counterparty = :who', { who: 'Quiet Ltd' })
        .callListeners(false)
        .execute();
    });
  }

  @Post('quiet/rolled-back')
  async rolledBack(@Body() body: { title: string }): Promise<void> {
    await this.db
      .transaction(async (manager) => {
        await manager.save(manager.create(Contract, { title: body.title, counterparty: 'Quiet Ltd' }), { listeners: false });
        throw new Error('changed my mind');
      })
      .catch(() => undefined);
  }

  @Post('heard/save-without-transaction')
  async heard(@Body() body: { title: string }): Promise<void> {
    const repo = this.db.getRepository(Contract);
    await repo.save(
      [repo.create({ title: body.title, counterparty: 'Heard Ltd' }), repo.create({ title: `${body.title} 2`, counterparty: 'Heard Ltd' })],
      {
        transaction: false,
      },
    );
  }

  @Post('heard/builder')
  async heardBuilder(@Body() body: { title: string }): Promise<void> {
    await this.db
      .createQueryBuilder()
      .update(Contract)
      .set({ title: body.title })
      .where('counterparty = :who', { who: 'Heard Ltd' })
      .execute();
  }
}

describe('writes TypeORM makes without calling subscribers', () => {
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

  const changesAfter = async (path: string, requestId: string): Promise<Record<string, unknown>> => {
    const response = await request(app.getHttpServer()).post(path).set('x-request-id', requestId).send({ title: 'Quiet' });
    expect(response.status).toBe(201);
    return changesOf(db, requestId);
  };

  it('counts each such statement of a repository, a query builder or clear() in entitiesOmitted', async () => {
    const saved = await changesAfter('/quiet/save', 'quiet-save');
    expect(await db.query('SELECT title FROM contract')).toEqual([{ title: 'Quiet' }]);
    const built = await changesAfter('/quiet/builder', 'quiet-builder');
    const cleared = await changesAfter('/quiet/clear', 'quiet-clear');
    expect(await db.query('SELECT title FROM contract')).toEqual([]);
    expect([saved, built, cleared].map(({ entities, entitiesOmitted }) => ({ entities, entitiesOmitted }))).toEqual([
      { entities: [], entitiesOmitted: 1 },
      { entities: [], entitiesOmitted: 1 },
      { entities: [], entitiesOmitted: 1 },
    ]);
  });

  it('counts a raw SQL write and a query builder delete committed in a transaction', async () => {
    await changesAfter('/quiet/save', 'quiet-seed');
    const raw = await changesAfter('/quiet/raw', 'quiet-raw');
    const deleted = await changesAfter('/quiet/delete-in-transaction', 'quiet-delete');
    expect(await db.query('SELECT title FROM contract')).toEqual([]);
    expect([raw.entitiesOmitted, deleted.entitiesOmitted]).toEqual([1, 1]);
  });

  it('counts nothing for a write rolled back with its transaction', async () => {
    const rolledBack = await changesAfter('/quiet/rolled-back', 'quiet-rolled-back');
    expect(await db.query('SELECT title FROM contract')).toEqual([]);
    expect(rolledBack).not.toHaveProperty('entitiesOmitted');
    expect(rolledBack).not.toHaveProperty('entities');
  });

  it('counts nothing for writes TypeORM reports, outside a transaction too', async () => {
    const saved = await changesAfter('/heard/save-without-transaction', 'heard-save');
    const built = await changesAfter('/heard/builder', 'heard-builder');
    expect(saved).not.toHaveProperty('entitiesOmitted');
    expect(built).not.toHaveProperty('entitiesOmitted');
    expect((saved.entities as { op: string }[]).map((change) => change.op)).toEqual(['insert', 'insert']);
    expect((built.entities as { op: string }[]).map((change) => change.op)).toEqual(['update']);
  });
});
