import { Body, Controller, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md, "Before/after diffs": a property written with the value it had is not listed.
// TypeORM loads `numeric` and `bigint` columns as text ("12.50", "7") while an app sets them from a
// JSON body as numbers (12.5, 7): such values are compared as the column stores them (a `numeric`
// rounded to its scale), so a form that sends every field back lists only what it changed.

@AuditedEntity({ type: 'Product' })
@Entity('decimal_product')
class Product {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') label!: string;
  @Column('numeric', { precision: 10, scale: 2 }) price!: string | number;
  @Column('bigint') stock!: string | number;
}

type ProductBody = { label: string; price: number; stock: number };

@Controller()
class ProductsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('products')
  async create(@Body() body: ProductBody): Promise<{ id: number }> {
    const repo = this.db.getRepository(Product);
    return { id: (await repo.save(repo.create(body))).id };
  }

  @Patch('products/:id')
  async update(@Param('id') id: string, @Body() body: ProductBody): Promise<void> {
    const repo = this.db.getRepository(Product);
    await repo.save(repo.merge(await repo.findOneByOrFail({ id: Number(id) }), body));
  }
}

describe('a numeric or bigint column written with the value it had', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { entities: [Product], controllers: [ProductsController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('lists only the label, the one property whose value changed', async () => {
    const created = await request(app.getHttpServer())
      .post('/products')
      .set('x-request-id', 'product-create')
      .send({ label: 'Old', price: 12.5, stock: 7 });
    expect(created.status).toBe(201);
    const { id } = created.body as { id: number };
    const before = await db.query('SELECT price::text AS price, stock::text AS stock FROM decimal_product');
    const updated = await request(app.getHttpServer())
      .patch(`/products/${id}`)
      .set('x-request-id', 'product-update')
      .send({ label: 'New', price: 12.5, stock: 7 });
    expect(updated.status).toBe(200);
    // The price and the stock columns hold what they held.
    expect(await db.query('SELECT price::text AS price, stock::text AS stock FROM decimal_product')).toEqual(before);
    const changes = await changesOf(db, 'product-update');
    expect(changes.entities).toEqual([{ type: 'Product', id, op: 'update', fields: { label: ['Old', 'New'] } }]);
  });

  it('lists a value rounded to what the column holds as no change, and a changed price as one', async () => {
    const created = await request(app.getHttpServer())
      .post('/products')
      .set('x-request-id', 'priced-create')
      .send({ label: 'Lamp', price: 40, stock: 3 });
    expect(created.status).toBe(201);
    const { id } = created.body as { id: number };
    // numeric(10,2) stores 40.004 as 40.00: the price it held.
    const rounded = await request(app.getHttpServer())
      .patch(`/products/${id}`)
      .set('x-request-id', 'priced-rounded')
      .send({ label: 'Lamp', price: 40.004, stock: 3 });
    expect(rounded.status).toBe(200);
    expect(await db.query('SELECT price::text AS price FROM decimal_product WHERE id = $1', [id])).toEqual([{ price: '40.00' }]);
    expect((await changesOf(db, 'priced-rounded')).entities).toBeUndefined();
    const repriced = await request(app.getHttpServer())
      .patch(`/products/${id}`)
      .set('x-request-id', 'priced-changed')
      .send({ label: 'Lamp', price: 40.01, stock: 30 });
    expect(repriced.status).toBe(200);
    expect((await changesOf(db, 'priced-changed')).entities).toEqual([
      { type: 'Product', id, op: 'update', fields: { price: ['40.00', 40.01], stock: ['3', 30] } },
    ]);
  });
});
