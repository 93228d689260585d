// Raw writes of an audited table's rows leave a trace (docs/GUIDE.md, "Diffs"): each statement
// counts 1 in `changes.entitiesOmitted`, also when it names no audited table itself: a bulk import
// with `COPY <table> FROM …`, a write through an auto-updatable view of the table, or into a table
// that inherits from it (its rows are the audited table's rows too). A write through a view of a
// table that is not audited counts nothing.
import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@AuditedEntity({ type: 'Item' })
@Entity('copy_item')
class Item {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') label!: string;
}

@Controller('items')
class ItemsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('import')
  async import(): Promise<void> {
    await this.db.query(`COPY copy_item (label) FROM PROGRAM 'printf "imported one\\nimported two\\n"'`);
  }

  @Post('run')
  async run(@Body() body: { sql: string }): Promise<void> {
    await this.db.query(body.sql);
  }

  @Post('rename-through-view')
  async renameThroughView(@Body() body: { label: string }): Promise<void> {
    await this.db.query('UPDATE copy_item_view SET label = $1', [body.label]);
  }
}

describe('raw writes of an audited table that name it only through a view or a child table', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { entities: [Item], controllers: [ItemsController] });
    await db.query('CREATE VIEW copy_item_view AS SELECT * FROM copy_item');
    await db.query('CREATE SCHEMA listing');
    await db.query('CREATE VIEW listing.short_item AS SELECT id, label FROM copy_item_view WHERE length(label) < 40');
    await db.query('CREATE TABLE copy_item_extra (note text) INHERITS (copy_item)');
    await db.query('CREATE TABLE memo (id serial PRIMARY KEY, body text)');
    await db.query('CREATE VIEW memo_view AS SELECT * FROM memo');
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('counts a COPY … FROM into the table', async () => {
    await request(app.getHttpServer()).post('/items/import').set('x-request-id', 'copy-import').send({}).expect(201);
    expect(await db.query('SELECT label FROM copy_item ORDER BY id')).toEqual([{ label: 'imported one' }, { label: 'imported two' }]);
    expect((await changesOf(db, 'copy-import')).entitiesOmitted).toBe(1);
  });

  it('counts an UPDATE through an updatable view of the table', async () => {
    await request(app.getHttpServer())
      .post('/items/rename-through-view')
      .set('x-request-id', 'view-rename')
      .send({ label: 'renamed' })
      .expect(201);
    expect(await db.query('SELECT DISTINCT label FROM copy_item')).toEqual([{ label: 'renamed' }]);
    expect((await changesOf(db, 'view-rename')).entitiesOmitted).toBe(1);
  });

  const run = async (tag: string, sql: string) => {
    await request(app.getHttpServer()).post('/items/run').set('x-request-id', tag).send({ sql }).expect(201);
    return ((await changesOf(db, tag)) as { entitiesOmitted?: number } | null)?.entitiesOmitted;
  };

  it('counts a write through a view of a view of the table, named with its schema, and through a table inheriting from it', async () => {
    expect(await run('nested-view', "INSERT INTO listing.short_item (label) VALUES ('through two views')")).toBe(1);
    expect(await run('child-table', "INSERT INTO copy_item_extra (label, note) VALUES ('inherited', 'x')")).toBe(1);
    expect(await db.query("SELECT label FROM copy_item WHERE label IN ('through two views', 'inherited') ORDER BY label")).toEqual([
      { label: 'inherited' },
      { label: 'through two views' },
    ]);
    // Again, from what was looked up the first time.
    expect(await run('nested-view-again', "UPDATE listing.short_item SET label = 'again' WHERE label = 'through two views'")).toBe(1);
  });

  it('counts nothing for a write through a view of a table that is not audited', async () => {
    expect(await run('memo-view', "INSERT INTO memo_view (body) VALUES ('not audited')")).toBeUndefined();
    expect(await db.query('SELECT body FROM memo')).toEqual([{ body: 'not audited' }]);
  });
});
