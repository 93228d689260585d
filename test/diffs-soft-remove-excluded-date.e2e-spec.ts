import { Controller, HttpCode, type INestApplication, Param, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, DeleteDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md, "Before/after diffs": `soft-remove`, made by `softRemove()`, lists the delete date
// column, set, and `recover`, made by `recover()`, that column, cleared. An entity that excludes
// its delete date column (a timestamp the app keeps out of its trail) still has each soft
// removal and recovery listed, by its op with `fields` `{}`; a `recover()` of a row that was not
// removed changed nothing and is not listed.

@AuditedEntity({ type: 'Offer', exclude: ['deletedAt'] })
@Entity('soft_excluded_offer')
class Offer {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') title!: string;
  @DeleteDateColumn({ type: 'timestamptz' }) deletedAt!: Date | null;
}

@Controller('offers')
class OffersController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async create(): Promise<{ id: number }> {
    return { id: (await this.db.getRepository(Offer).save({ title: 'Spring offer' })).id };
  }

  @Post(':id/withdraw')
  @HttpCode(204)
  async withdraw(@Param('id') id: string): Promise<void> {
    const repo = this.db.getRepository(Offer);
    await repo.softRemove(await repo.findOneByOrFail({ id: Number(id) }));
  }

  @Post(':id/reinstate')
  @HttpCode(204)
  async reinstate(@Param('id') id: string): Promise<void> {
    const repo = this.db.getRepository(Offer);
    await repo.recover(await repo.findOneOrFail({ where: { id: Number(id) }, withDeleted: true }));
  }
}

describe('soft removal of an entity that excludes its delete date', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { entities: [Offer], controllers: [OffersController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const removed = async (id: number) =>
    (await db.query<{ gone: boolean }>('SELECT "deletedAt" IS NOT NULL AS gone FROM soft_excluded_offer WHERE id = $1', [id]))[0].gone;

  it('lists the withdrawal and the reinstatement, without the date', async () => {
    const { id } = (await request(app.getHttpServer()).post('/offers').expect(201)).body as { id: number };
    await request(app.getHttpServer()).post(`/offers/${id}/withdraw`).set('x-request-id', 'offer-withdrawn').expect(204);
    const withdrawn = await removed(id);
    await request(app.getHttpServer()).post(`/offers/${id}/reinstate`).set('x-request-id', 'offer-reinstated').expect(204);
    expect({ withdrawn, reinstated: await removed(id) }).toEqual({ withdrawn: true, reinstated: false });

    expect({
      withdrawn: await changesOf(db, 'offer-withdrawn'),
      reinstated: await changesOf(db, 'offer-reinstated'),
    }).toMatchObject({
      withdrawn: { entities: [{ type: 'Offer', id, op: 'soft-remove', fields: {} }] },
      reinstated: { entities: [{ type: 'Offer', id, op: 'recover', fields: {} }] },
    });
    for (const requestId of ['offer-withdrawn', 'offer-reinstated'])
      expect((await changesOf(db, requestId)).entitiesOmitted).toBeUndefined();
  });

  it('does not list a recovery of a row that was not removed', async () => {
    const { id } = (await request(app.getHttpServer()).post('/offers').expect(201)).body as { id: number };
    await request(app.getHttpServer()).post(`/offers/${id}/reinstate`).set('x-request-id', 'offer-not-removed').expect(204);
    expect(await removed(id)).toBe(false);
    expect((await changesOf(db, 'offer-not-removed')).entities).toBeUndefined();
  });
});
