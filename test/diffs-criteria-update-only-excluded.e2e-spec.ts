import { Body, Controller, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md, "Before/after diffs": "An update that changed only excluded properties is not
// listed", for every kind of write: a `save()`, an `update()` by criteria and a query builder's
// update that set only excluded properties list nothing; one that sets a shown property beside
// them lists that property alone.

@AuditedEntity({ type: 'Memo', exclude: ['internalNote'] })
@Entity('criteria_excluded_memo')
class Memo {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') title!: string;
  @Column('text', { nullable: true }) internalNote!: string | null;
}

@Controller('memos')
class MemosController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post()
  async create(): Promise<{ id: number }> {
    return { id: (await this.db.getRepository(Memo).save({ title: 'Quarterly memo' })).id };
  }

  @Patch(':id/note-by-criteria')
  async noteByCriteria(@Param('id') id: string, @Body() body: { note: string }): Promise<void> {
    await this.db.getRepository(Memo).update({ id: Number(id) }, { internalNote: body.note });
  }

  @Patch(':id/note-by-builder')
  async noteByBuilder(@Param('id') id: string, @Body() body: { note: string }): Promise<void> {
    await this.db
      .createQueryBuilder()
      .update(Memo)
      .set({ internalNote: body.note })
      .where('id = :id', { id: Number(id) })
      .execute();
  }

  @Patch(':id/note-by-save')
  async noteBySave(@Param('id') id: string, @Body() body: { note: string }): Promise<void> {
    const repo = this.db.getRepository(Memo);
    const memo = await repo.findOneByOrFail({ id: Number(id) });
    memo.internalNote = body.note;
    await repo.save(memo);
  }

  @Patch(':id/retitle-by-criteria')
  async retitle(@Param('id') id: string, @Body() body: { title: string; note: string }): Promise<void> {
    await this.db.getRepository(Memo).update({ id: Number(id) }, { title: body.title, internalNote: body.note });
  }
}

describe('an update of excluded properties only', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { entities: [Memo], controllers: [MemosController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('is listed neither after save() nor by criteria nor through a query builder', async () => {
    const server = app.getHttpServer();
    const { id } = (await request(server).post('/memos').expect(201)).body as { id: number };
    await request(server).patch(`/memos/${id}/note-by-save`).set('x-request-id', 'memo-save').send({ note: 'first' }).expect(200);
    await request(server).patch(`/memos/${id}/note-by-criteria`).set('x-request-id', 'memo-criteria').send({ note: 'second' }).expect(200);
    await request(server).patch(`/memos/${id}/note-by-builder`).set('x-request-id', 'memo-builder').send({ note: 'third' }).expect(200);
    expect(await db.query('SELECT "internalNote" FROM criteria_excluded_memo WHERE id = $1', [id])).toEqual([{ internalNote: 'third' }]);
    expect({
      save: await changesOf(db, 'memo-save'),
      criteria: await changesOf(db, 'memo-criteria'),
      builder: await changesOf(db, 'memo-builder'),
    }).toEqual({ save: { body: { note: 'first' } }, criteria: { body: { note: 'second' } }, builder: { body: { note: 'third' } } });
  });

  it('lists the shown property an update by criteria sets beside an excluded one', async () => {
    const server = app.getHttpServer();
    const { id } = (await request(server).post('/memos').expect(201)).body as { id: number };
    await request(server)
      .patch(`/memos/${id}/retitle-by-criteria`)
      .set('x-request-id', 'memo-retitled')
      .send({ title: 'Annual memo', note: 'kept out' })
      .expect(200);
    expect((await changesOf(db, 'memo-retitled')).entities).toEqual([
      { type: 'Memo', id: null, op: 'update', before: 'unknown', after: { title: 'Annual memo' } },
    ]);
  });
});
