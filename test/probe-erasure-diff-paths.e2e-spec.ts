import { Body, Controller, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Audited, AuditedEntity, AuditQueryService, AuditService } from '../src/audit';
import { startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

const PSEUDONYM_KEY = 'a-pseudonym-key-of-at-least-32-characters';

// docs/PRIVACY.md: "Diffs of `@AuditedEntity()` entities sit at `changes.entities[].fields.<property>`",
// and erasing an entity takes "every row about that entity"'s personal values. docs/GUIDE.md: a
// property is named by its path (`profile.city` for a column of an embedded `profile`), and a
// write by criteria puts its values under `after`, "keyed by property path like `fields`". A
// customer's name (an embedded column) and e-mail, named as personal data as the docs show, must
// be unreadable after the customer is erased, whichever way the app wrote them.
class Person {
  @Column('text') name!: string;
}

@AuditedEntity({ type: 'Customer' })
@Entity('probe_customer')
class Customer {
  @PrimaryGeneratedColumn() id!: number;
  @Column(() => Person) person!: Person;
  @Column('text') email!: string;
}

@Controller()
class CustomersController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('customers')
  @Audited('customer_created', { entityType: 'Customer', entityId: { result: 'id' } })
  async create(@Body() body: { name: string; email: string }): Promise<{ id: number }> {
    const repo = this.db.getRepository(Customer);
    return { id: (await repo.save(repo.create({ person: { name: body.name }, email: body.email }))).id };
  }

  @Patch('customers/:id/email')
  @Audited('customer_email_changed', { entityType: 'Customer', entityId: { param: 'id' } })
  async email(@Param('id') id: string, @Body() body: { email: string }): Promise<void> {
    await this.db.getRepository(Customer).update({ id: Number(id) }, { email: body.email });
  }
}

describe('probe: personal values of diffs at the paths the docs name, after erasure', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(
      db,
      {
        mode: 'sync',
        privacy: {
          personalData: [
            'changes.body.name',
            'changes.body.email',
            'changes.entities[].fields.email',
            'changes.entities[].fields.person.name',
          ],
          pseudonymKey: PSEUDONYM_KEY,
        },
      },
      { entities: [Customer], controllers: [CustomersController] },
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  /** The actions of the rows a read shows `text` on. */
  const showing = async (text: string) =>
    (await app.get(AuditQueryService).search({ entityType: 'Customer' }, { limit: 500 })).items
      .filter((row) => JSON.stringify(row).includes(text))
      .map((row) => row.action);

  const createCustomer = async (name: string, email: string) =>
    ((await request(app.getHttpServer()).post('/customers').send({ name, email }).expect(201)).body as { id: number }).id;

  it("erases a personal value of an embedded column (the diff's `person.name`)", async () => {
    const id = await createCustomer('Jane Roe', 'jane@example.com');
    expect(await showing('Jane Roe')).toEqual(['customer_created']);
    await app.get(AuditService).erase({ entityType: 'Customer', entityId: String(id), requestedBy: 'dpo' });
    expect(await showing('Jane Roe')).toEqual([]);
  }, 30_000);

  it("erases a personal value written by criteria (the diff's `after.email`)", async () => {
    const id = await createCustomer('John Doe', 'john@example.com');
    await request(app.getHttpServer()).patch(`/customers/${id}/email`).send({ email: 'john.doe@example.org' }).expect(200);
    const [row] = await db.query<{ changes: unknown }>(`SELECT changes FROM audit_log WHERE action = 'customer_email_changed'`);
    expect(JSON.stringify(row.changes)).toContain('"after":{"email":"john.doe@example.org"}');
    await app.get(AuditService).erase({ entityType: 'Customer', entityId: String(id), requestedBy: 'dpo' });
    expect(await showing('john.doe@example.org')).toEqual([]);
  }, 30_000);
});
