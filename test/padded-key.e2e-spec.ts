import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

/** An audited entity keyed by a code the client chooses (a SKU, a slug, a user name). */
@AuditedEntity({ type: 'Sku' })
@Entity('sku')
class Sku {
  @PrimaryColumn('text') code!: string;
  @Column('text') name!: string;
}

@Controller()
class CatalogController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('catalog/import')
  import(@Body() body: { codes: string[]; contract: string }): Promise<void> {
    return this.db.transaction(async (manager) => {
      for (const code of body.codes) await manager.save(manager.create(Sku, { code, name: 'Widget' }));
      await manager.save(manager.create(Contract, { title: body.contract, counterparty: 'Catalog Ltd' }));
    });
  }
}

// docs/GUIDE.md ("Diffs"): "a client that pads anything it sends cannot wipe the record of what its
// request changed"; values are cut, the largest first, and "every change keeps its entity type,
// id, op and field names". Here the client pads the keys of the entities it creates (about 11 KB
// each, each key well under half of maxEntryBytes): the change to the contract, made last and
// small, is still listed: long ids are cut as values, and whole changes go the largest first.
describe('client-chosen keys padded in one request never push out a small change', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [CatalogController], entities: [Sku] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('keeps the small change to the contract beside changes with padded keys', async () => {
    const codes = ['a', 'b', 'c'].map((letter) => `${letter}-${'k'.repeat(11_000)}`);
    await request(app.getHttpServer())
      .post('/catalog/import')
      .set('x-request-id', 'pk-1')
      .send({ codes, contract: 'Victim lease' })
      .expect(201);
    expect(await db.query('SELECT title FROM contract')).toEqual([{ title: 'Victim lease' }]);
    const changes = await changesOf(db, 'pk-1');
    const types = ((changes.entities ?? []) as { type: string }[]).map((change) => change.type);
    expect(types).toContain('Contract');
  });
});
