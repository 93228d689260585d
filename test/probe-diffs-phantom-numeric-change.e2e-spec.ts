import { Body, Controller, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// Promise (docs/GUIDE.md, "Before/after diffs"): an `update` lists "the properties and relations
// TypeORM found changed, if their values differ", and "A property written with the value it had
// (a `simple-json` object with its keys reordered, say) is not listed".
//
// Break: `numeric` and `bigint` columns are loaded by TypeORM as text ("12.50", "7"), while an app
// sets them from a JSON body as numbers (12.5, 7). TypeORM then writes them again, and the diff
// compares the two JavaScript values as they are: "12.50" is not 12.5, so the property is listed
// as changed although the column holds exactly what it held (numeric(10,2) stores 12.50 again).
// A form that sends every field back puts a change of the price and of the stock on every save.
//
// Observed: a PATCH that changes only `label` (the body repeats `price: 12.5, stock: 7`) is
// recorded as `{ price: ["12.50", 12.5], stock: ["7", 7], label: ["Old", "New"] }`.
//
// Severity: low (false changes, numerically equal; the trail claims a price was changed when it
// was not, and the real change is buried among them).
//
// Fix guess: compare a numeric or bigint column's values as the column stores them (both
// through the driver's persist form, or as decimals normalized: no sign of zero, no trailing
// zeros past the scale) before listing the pair.

@AuditedEntity({ type: 'Product' })
@Entity('probe_product')
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

describe('probe: a numeric or bigint column written with the value it had', () => {
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
      .set('x-request-id', 'probe-product-create')
      .send({ label: 'Old', price: 12.5, stock: 7 });
    expect(created.status).toBe(201);
    const { id } = created.body as { id: number };
    const before = await db.query('SELECT price::text AS price, stock::text AS stock FROM probe_product');
    const updated = await request(app.getHttpServer())
      .patch(`/products/${id}`)
      .set('x-request-id', 'probe-product-update')
      .send({ label: 'New', price: 12.5, stock: 7 });
    expect(updated.status).toBe(200);
    // The price and the stock columns hold what they held.
    expect(await db.query('SELECT price::text AS price, stock::text AS stock FROM probe_product')).toEqual(before);
    const changes = await changesOf(db, 'probe-product-update');
    expect(changes.entities).toEqual([{ type: 'Product', id, op: 'update', fields: { label: ['Old', 'New'] } }]);
  });
});
