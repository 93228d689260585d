import { Body, Controller, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md "fields: [before, after] per property": a diff shows a property's values. A
// value type of the app's own (money, a decimal, a date library's instant) is held in the entity
// as a class instance, written to its column by a TypeORM `transformer`, and shown by JSON through
// its `toJSON()`. The diff must show that value ("12.50 EUR"), not the instance's inner fields.

/** A value type as apps write them: inner fields, a `toJSON()` for every JSON view of it. */
class Money {
  constructor(
    readonly cents: number,
    readonly currency: string,
  ) {}

  static parse(text: string): Money {
    const [amount, currency] = text.split(' ');
    return new Money(Math.round(Number(amount) * 100), currency);
  }

  toJSON(): string {
    return `${(this.cents / 100).toFixed(2)} ${this.currency}`;
  }
}

@AuditedEntity({ type: 'Invoice' })
@Entity('probe_invoice')
class Invoice {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text', { transformer: { to: (value: Money) => value.toJSON(), from: (text: string) => Money.parse(text) } }) total!: Money;
}

/** A file's bytes in a bytea column. */
@AuditedEntity({ type: 'Attachment' })
@Entity('probe_attachment')
class Attachment {
  @PrimaryGeneratedColumn() id!: number;
  @Column('bytea') content!: Buffer;
}

@Controller()
class InvoicesController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('invoices')
  async create(@Body() body: { total: string }): Promise<{ id: number }> {
    const repo = this.db.getRepository(Invoice);
    return { id: (await repo.save(repo.create({ total: Money.parse(body.total) }))).id };
  }

  @Patch('invoices/:id')
  async update(@Param('id') id: string, @Body() body: { total: string }): Promise<void> {
    const repo = this.db.getRepository(Invoice);
    const invoice = await repo.findOneByOrFail({ id: Number(id) });
    invoice.total = Money.parse(body.total);
    await repo.save(invoice);
  }

  @Post('attachments')
  async attach(@Body() body: { hex: string }): Promise<{ id: number }> {
    const repo = this.db.getRepository(Attachment);
    return { id: (await repo.save(repo.create({ content: Buffer.from(body.hex, 'hex') }))).id };
  }

  @Patch('attachments/:id')
  async replace(@Param('id') id: string, @Body() body: { hex: string }): Promise<void> {
    const repo = this.db.getRepository(Attachment);
    const attachment = await repo.findOneByOrFail({ id: Number(id) });
    attachment.content = Buffer.from(body.hex, 'hex');
    await repo.save(attachment);
  }
}

describe('probe: diffs of values that are not plain data (a value type through a transformer, bytea)', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let n = 0;

  const send = async (method: 'post' | 'patch', path: string, body: object): Promise<{ body: unknown; entities: unknown }> => {
    const requestId = `probe-money-${++n}`;
    const response = await request(app.getHttpServer())[method](path).set('x-request-id', requestId).send(body);
    expect(response.status).toBeLessThan(300);
    return { body: response.body as unknown, entities: (await changesOf(db, requestId)).entities };
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { entities: [Invoice, Attachment], controllers: [InvoicesController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('shows the value as the column and JSON hold it, on insert and on update', async () => {
    const created = await send('post', '/invoices', { total: '12.50 EUR' });
    const { id } = created.body as { id: number };
    expect(await db.query('SELECT total FROM probe_invoice')).toEqual([{ total: '12.50 EUR' }]);
    const updated = await send('patch', `/invoices/${id}`, { total: '13.00 EUR' });
    expect({ created: created.entities, updated: updated.entities }).toEqual({
      created: [{ type: 'Invoice', id, op: 'insert', fields: { id: [null, id], total: [null, '12.50 EUR'] } }],
      updated: [{ type: 'Invoice', id, op: 'update', fields: { total: ['12.50 EUR', '13.00 EUR'] } }],
    });
  });

  it('tells the bytes before from the bytes after when a bytea value changes to another of the same length', async () => {
    const { id } = (await send('post', '/attachments', { hex: 'cafebabe' })).body as { id: number };
    const updated = (await send('patch', `/attachments/${id}`, { hex: 'deadbeef' })).entities as {
      fields: { content: [unknown, unknown] };
    }[];
    expect(updated).toHaveLength(1);
    const [before, after] = updated[0].fields.content;
    // A pair listed as changed whose two sides read the same tells the auditor nothing.
    expect(JSON.stringify(before)).not.toBe(JSON.stringify(after));
  });
});
