// A save() or remove() of a loaded row that PostgreSQL answered with a count of 0 rows changed
// nothing and is not listed (docs/GUIDE.md, "Before/after diffs"), as a write by criteria that
// matched nothing: a `BEFORE UPDATE OR DELETE` trigger that returns NULL for a held agreement
// leaves the row as it was (row-level security hiding the row behaves alike). TypeORM raises
// nothing and sends its events; the statement it sent for each row says what happened.
import { Body, Controller, Delete, HttpCode, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, In, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@AuditedEntity({ type: 'Agreement' })
@Entity('held_agreement')
class Agreement {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') title!: string;
  @Column('boolean', { default: false }) held!: boolean;
}

@Controller()
class AgreementsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('agreements')
  async create(@Body() body: { title: string; held: boolean }): Promise<{ id: number }> {
    const repo = this.db.getRepository(Agreement);
    return { id: (await repo.save(repo.create(body))).id };
  }

  @Patch('agreements/:id')
  async update(@Param('id') id: string, @Body() body: { title: string }): Promise<void> {
    const repo = this.db.getRepository(Agreement);
    await repo.save(repo.merge(await repo.findOneByOrFail({ id: Number(id) }), body));
  }

  /** Retitles every listed agreement in one save(): one UPDATE per row. */
  @Patch('agreements')
  async retitle(@Body() body: { ids: number[]; title: string }): Promise<void> {
    const repo = this.db.getRepository(Agreement);
    const rows = await repo.findBy({ id: In(body.ids) });
    await repo.save(rows.map((row) => repo.merge(row, { title: body.title })));
  }

  /** Removes every listed agreement in one remove(): one DELETE for them all. */
  @Delete('agreements')
  @HttpCode(204)
  async removeAll(@Body() body: { ids: number[] }): Promise<void> {
    const repo = this.db.getRepository(Agreement);
    await repo.remove(await repo.findBy({ id: In(body.ids) }));
  }

  @Delete('agreements/:id')
  @HttpCode(204)
  async remove(@Param('id') id: string): Promise<void> {
    const repo = this.db.getRepository(Agreement);
    await repo.remove(await repo.findOneByOrFail({ id: Number(id) }));
  }
}

describe('save() and remove() of loaded rows that PostgreSQL answered with 0 rows', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { entities: [Agreement], controllers: [AgreementsController] });
    // A held agreement is neither edited nor deleted: the database skips the row.
    await db.query(`CREATE FUNCTION keep_held() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`);
    await db.query(
      `CREATE TRIGGER keep_held BEFORE UPDATE OR DELETE ON held_agreement FOR EACH ROW WHEN (OLD.held) EXECUTE FUNCTION keep_held()`,
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const create = async (title: string, held: boolean) =>
    ((await request(app.getHttpServer()).post('/agreements').send({ title, held }).expect(201)).body as { id: number }).id;
  const rowsOf = (...ids: number[]) =>
    db.query<{ id: number; title: string }>('SELECT id, title FROM held_agreement WHERE id = ANY($1) ORDER BY id', [ids]);
  const entitiesOf = async (requestId: string) => ((await changesOf(db, requestId)) as { entities?: unknown } | null)?.entities;

  it('lists no update of a row the database left as it was', async () => {
    const id = await create('Signed', true);
    await request(app.getHttpServer()).patch(`/agreements/${id}`).set('x-request-id', 'held-edit').send({ title: 'Edited' }).expect(200);
    expect(await rowsOf(id)).toEqual([{ id, title: 'Signed' }]);
    expect(await entitiesOf('held-edit')).toBeUndefined();
  });

  it('lists no remove of a row still in the table', async () => {
    const id = await create('Kept', true);
    await request(app.getHttpServer()).delete(`/agreements/${id}`).set('x-request-id', 'held-remove').expect(204);
    expect(await rowsOf(id)).toEqual([{ id, title: 'Kept' }]);
    expect(await entitiesOf('held-remove')).toBeUndefined();
  });

  it('lists, of rows saved at once, the update of each row written and of no row left as it was', async () => {
    const held = await create('Held', true);
    const free = await create('Free', false);
    await request(app.getHttpServer())
      .patch('/agreements')
      .set('x-request-id', 'retitle-both')
      .send({ ids: [held, free], title: 'Retitled' })
      .expect(200);
    expect(await rowsOf(held, free)).toEqual([
      { id: held, title: 'Held' },
      { id: free, title: 'Retitled' },
    ]);
    expect(await entitiesOf('retitle-both')).toEqual([
      { type: 'Agreement', id: free, op: 'update', fields: { title: ['Free', 'Retitled'] } },
    ]);
  });

  it('lists no remove of rows removed at once when the database kept them all, and each remove when it removed them', async () => {
    const kept = [await create('Kept one', true), await create('Kept two', true)];
    await request(app.getHttpServer()).delete('/agreements').set('x-request-id', 'remove-held').send({ ids: kept }).expect(204);
    expect((await rowsOf(...kept)).map((row) => row.title)).toEqual(['Kept one', 'Kept two']);
    expect(await entitiesOf('remove-held')).toBeUndefined();

    const gone = [await create('Gone one', false), await create('Gone two', false)];
    await request(app.getHttpServer()).delete('/agreements').set('x-request-id', 'remove-free').send({ ids: gone }).expect(204);
    expect(await rowsOf(...gone)).toEqual([]);
    expect(((await entitiesOf('remove-free')) as { op: string }[]).map((change) => change.op)).toEqual(['remove', 'remove']);
  });
});
