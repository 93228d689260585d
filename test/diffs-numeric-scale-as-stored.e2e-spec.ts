// A `numeric` column is compared as it stores its values (docs/GUIDE.md, "Before/after diffs"),
// with the scale it really has. TypeORM gives a column a scale only with a precision: a column
// declared `{ scale: 2 }` alone is a plain `numeric`, which keeps every digit, so 12.504 set to
// 12.5 is a change of the stored value and is listed. A negative scale (PostgreSQL 15 and later)
// rounds before the point: `numeric(5,-2)` stores 12345 as 12300, so an amount set to 12345 where
// 12300 was stored is no change.
import { Body, Controller, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@AuditedEntity({ type: 'Invoice' })
@Entity('scale_invoice')
class Invoice {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') label!: string;
  // No precision: a plain `numeric` in the database.
  @Column('numeric', { scale: 2 }) price!: string | number;
  // Rounded to hundreds by the database.
  @Column('numeric', { precision: 5, scale: -2 }) amount!: string | number;
}

type InvoiceBody = Partial<{ label: string; price: string | number; amount: string | number }>;

@Controller()
class InvoicesController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('invoices')
  async create(@Body() body: InvoiceBody): Promise<{ id: number }> {
    const repo = this.db.getRepository(Invoice);
    return { id: (await repo.save(repo.create(body))).id };
  }

  @Patch('invoices/:id')
  async update(@Param('id') id: string, @Body() body: InvoiceBody): Promise<void> {
    const repo = this.db.getRepository(Invoice);
    await repo.save(repo.merge(await repo.findOneByOrFail({ id: Number(id) }), body));
  }
}

describe('a numeric column compared with the scale it stores', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { entities: [Invoice], controllers: [InvoicesController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const stored = async (id: number) =>
    (
      await db.query<{ price: string; amount: string }>(
        'SELECT price::text AS price, amount::text AS amount FROM scale_invoice WHERE id = $1',
        [id],
      )
    )[0];

  it('lists a price changed from 12.504 to 12.5 in a numeric column without a precision', async () => {
    const created = await request(app.getHttpServer()).post('/invoices').send({ label: 'Lamp', price: '12.504', amount: 100 }).expect(201);
    const { id } = created.body as { id: number };
    expect((await stored(id)).price).toBe('12.504');
    await request(app.getHttpServer()).patch(`/invoices/${id}`).set('x-request-id', 'scale-only-changed').send({ price: 12.5 }).expect(200);
    // The column holds another value than before.
    expect((await stored(id)).price).toBe('12.5');
    expect((await changesOf(db, 'scale-only-changed')).entities).toEqual([
      { type: 'Invoice', id, op: 'update', fields: { price: ['12.504', 12.5] } },
    ]);
  });

  it('lists no change for an amount a negative scale stores as it was', async () => {
    const created = await request(app.getHttpServer()).post('/invoices').send({ label: 'Desk', price: 1, amount: 12300 }).expect(201);
    const { id } = created.body as { id: number };
    expect((await stored(id)).amount).toBe('12300');
    await request(app.getHttpServer())
      .patch(`/invoices/${id}`)
      .set('x-request-id', 'negative-scale-same')
      .send({ label: 'Desk 2', amount: 12345 })
      .expect(200);
    // numeric(5,-2) rounds 12345 to 12300: the amount it held.
    expect((await stored(id)).amount).toBe('12300');
    expect((await changesOf(db, 'negative-scale-same')).entities).toEqual([
      { type: 'Invoice', id, op: 'update', fields: { label: ['Desk', 'Desk 2'] } },
    ]);
  });
});
