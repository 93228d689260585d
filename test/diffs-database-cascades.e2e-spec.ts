import { Controller, Delete, HttpCode, type INestApplication, Param, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md, "Before/after diffs": rows of audited entities that PostgreSQL itself deletes or
// changes by a foreign key's action (`onDelete: 'CASCADE'`, `'SET NULL'`, `'SET DEFAULT'`, and the
// same for `onUpdate`) send no entity event and no statement names their table: each such key of
// an audited entity that a reported delete sets going counts 1 in `changes.entitiesOmitted`.
// `remove()` of a customer referred to by audited contracts (ON DELETE CASCADE) and an audited
// ticket (ON DELETE SET NULL) lists the customer's removal and counts 2; a removal nothing
// refers to with such a key counts nothing.

@AuditedEntity({ type: 'Customer' })
@Entity('cascade_customer')
class Customer {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') name!: string;
}

@AuditedEntity({ type: 'CustomerContract' })
@Entity('cascade_customer_contract')
class CustomerContract {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') title!: string;
  @ManyToOne(() => Customer, { onDelete: 'CASCADE', nullable: false }) customer!: Customer;
}

@AuditedEntity({ type: 'Ticket' })
@Entity('cascade_ticket')
class Ticket {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') subject!: string;
  @ManyToOne(() => Customer, { onDelete: 'SET NULL', nullable: true }) customer!: Customer | null;
}

@Controller()
class CustomersController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('customers')
  async create(): Promise<{ id: number }> {
    const customer = await this.db.getRepository(Customer).save({ name: 'Acme' });
    await this.db.getRepository(CustomerContract).save([
      { title: 'Master agreement', customer },
      { title: 'NDA', customer },
    ]);
    await this.db.getRepository(Ticket).save({ subject: 'Invoice question', customer });
    return { id: customer.id };
  }

  @Delete('customers/:id')
  @HttpCode(204)
  async remove(@Param('id') id: string): Promise<void> {
    const repo = this.db.getRepository(Customer);
    await repo.remove(await repo.findOneByOrFail({ id: Number(id) }));
  }

  @Delete('tickets/:id')
  @HttpCode(204)
  async removeTicket(@Param('id') id: string): Promise<void> {
    const repo = this.db.getRepository(Ticket);
    await repo.remove(await repo.findOneByOrFail({ id: Number(id) }));
  }
}

describe('audited rows changed by a database cascade', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { entities: [Customer, CustomerContract, Ticket], controllers: [CustomersController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('counts the contracts deleted and the ticket changed with their customer, 1 per foreign key', async () => {
    const created = await request(app.getHttpServer()).post('/customers').set('x-request-id', 'cascade-create');
    expect(created.status).toBe(201);
    const { id } = created.body as { id: number };
    const removed = await request(app.getHttpServer()).delete(`/customers/${id}`).set('x-request-id', 'cascade-remove');
    expect(removed.status).toBe(204);
    // The database did it: the contracts are gone, the ticket has no customer.
    expect(await db.query('SELECT count(*)::int AS n FROM cascade_customer_contract')).toEqual([{ n: 0 }]);
    expect(await db.query('SELECT "customerId" FROM cascade_ticket')).toEqual([{ customerId: null }]);
    const changes = await changesOf(db, 'cascade-remove');
    const entities = (changes.entities ?? []) as { type: string; op: string }[];
    // The customer's removal, listed; the contracts deleted and the ticket changed by the database, counted.
    expect({ listed: entities.map((change) => `${change.type} ${change.op}`), omitted: changes.entitiesOmitted }).toEqual({
      listed: ['Customer remove'],
      omitted: 2,
    });
  });

  it('counts nothing for the removal of a row no such key refers to', async () => {
    const created = await request(app.getHttpServer()).post('/customers');
    expect(created.status).toBe(201);
    const [ticket] = await db.query<{ id: number }>('SELECT id FROM cascade_ticket ORDER BY id DESC LIMIT 1');
    const removed = await request(app.getHttpServer()).delete(`/tickets/${ticket.id}`).set('x-request-id', 'cascade-ticket');
    expect(removed.status).toBe(204);
    const changes = await changesOf(db, 'cascade-ticket');
    expect({
      listed: ((changes.entities ?? []) as { type: string; op: string }[]).map((change) => `${change.type} ${change.op}`),
      omitted: changes.entitiesOmitted,
    }).toEqual({
      listed: ['Ticket remove'],
      omitted: undefined,
    });
  });
});
