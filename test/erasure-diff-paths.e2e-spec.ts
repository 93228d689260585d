import { Body, Controller, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { type Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Audited, AuditedEntity, AuditQueryService, AuditSealer, AuditService } from '../src/audit';
import { startDiffsApp } from './support/diffs-app';
import { sealingKeys, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/PRIVACY.md: "Diffs of `@AuditedEntity()` entities sit at `changes.entities[].fields.<property>`",
// and erasing an entity takes "every row about that entity"'s personal values. docs/GUIDE.md: a
// property is named by its path (`profile.city` for a column of an embedded `profile`), and a
// write by criteria puts its values under `after`, "keyed by property path like `fields`". A
// customer's name (an embedded column) and e-mail, named as personal data as the docs show, are
// kept apart from the row and unreadable after the customer is erased, whichever way the app
// wrote them; the trail still verifies, and a value changed instead of erased is named.
class Person {
  @Column('text') name!: string;
}

@AuditedEntity({ type: 'Customer' })
@Entity('erasure_customer')
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

describe('personal values of diffs at the paths the docs name, after erasure', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;

  beforeAll(async () => {
    stderr = new StderrCapture();
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
        },
        integrity: {
          enabled: true,
          intervalMs: 3_600_000,
          signingKey: keys.privatePem,
          entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }],
        },
      },
      { entities: [Customer], controllers: [CustomersController] },
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  });

  /** The actions of the rows a read shows `text` on. */
  const showing = async (text: string) =>
    (await app.get(AuditQueryService).search({ entityType: 'Customer' }, { limit: 500 })).items
      .filter((row) => JSON.stringify(row).includes(text))
      .map((row) => row.action);

  /** Seals every row, then runs `audit-verify` over the trail. */
  const sealedAndVerified = async () => {
    const total = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_log'))[0].n;
    const sealed = async () => (await db.query<{ n: number }>('SELECT coalesce(sum(row_count), 0)::int AS n FROM audit_seal'))[0].n;
    while ((await sealed()) < (await total())) await app.get(AuditSealer).sealNow();
    return verify(db.url(), `--public-key=${keys.publicPem}`, '--entry-key', entryKey);
  };
  /** The `personal` column of the one row of `action`. */
  const personalOf = async (action: string) =>
    (await db.query<{ personal: string }>(`SELECT personal FROM audit_log WHERE action = $1`, [action]))[0].personal;

  const createCustomer = async (name: string, email: string) =>
    ((await request(app.getHttpServer()).post('/customers').send({ name, email }).expect(201)).body as { id: number }).id;

  it("erases a personal value of an embedded column (the diff's `person.name`)", async () => {
    const id = await createCustomer('Jane Roe', 'jane@example.com');
    expect(await showing('Jane Roe')).toEqual(['customer_created']);
    const [row] = await db.query<{ changes: unknown }>(`SELECT changes FROM audit_log WHERE action = 'customer_created'`);
    expect(JSON.stringify(row.changes)).not.toContain('Jane Roe');
    expect(await personalOf('customer_created')).toContain('["changes","entities",0,"fields","person.name"]');
    await app.get(AuditService).erase({ entityType: 'Customer', entityId: String(id), requestedBy: 'dpo' });
    expect(await showing('Jane Roe')).toEqual([]);
    const report = await sealedAndVerified();
    expect(report.out).toContain('result: CLEAN');
  }, 60_000);

  it("erases a personal value written by criteria (the diff's `after.email`)", async () => {
    const id = await createCustomer('John Doe', 'john@example.com');
    await request(app.getHttpServer()).patch(`/customers/${id}/email`).send({ email: 'john.doe@example.org' }).expect(200);
    const [row] = await db.query<{ changes: unknown }>(`SELECT changes FROM audit_log WHERE action = 'customer_email_changed'`);
    expect(JSON.stringify(row.changes)).toContain('"after":{}');
    expect(await personalOf('customer_email_changed')).toContain('[["changes","entities",0,"after","email"],"\\"john.doe@example.org\\""]');
    expect(await showing('john.doe@example.org')).toEqual(['customer_email_changed']);
    await app.get(AuditService).erase({ entityType: 'Customer', entityId: String(id), requestedBy: 'dpo' });
    expect(await showing('john.doe@example.org')).toEqual([]);
    const report = await sealedAndVerified();
    expect(report.out).toContain('result: CLEAN');
  }, 60_000);

  it('names a value of `after` changed instead of erased', async () => {
    const id = await createCustomer('Mia Moe', 'mia@example.com');
    await request(app.getHttpServer()).patch(`/customers/${id}/email`).send({ email: 'mia.moe@example.org' }).expect(200);
    expect((await sealedAndVerified()).out).toContain('result: CLEAN');
    const [row] = await db.query<{ id: string; personal: string }>(
      `SELECT id::text AS id, personal FROM audit_log WHERE action = 'customer_email_changed' AND personal LIKE '%mia.moe%'`,
    );
    const personal = JSON.parse(row.personal) as { salt: string; values: [(string | number)[], string][] };
    for (const value of personal.values) if (value[0].includes('after')) value[1] = JSON.stringify('someone@example.org');
    const owner = new Client({ connectionString: db.url() });
    await owner.connect();
    try {
      // As a superuser with triggers off: a change the database itself cannot refuse.
      await owner.query('SET session_replication_role = replica');
      await owner.query(`UPDATE audit_log SET personal = $2 WHERE id = $1`, [row.id, JSON.stringify(personal)]);
    } finally {
      await owner.end();
    }
    const report = await sealedAndVerified();
    expect(report.out.filter((line) => line.startsWith('ANOMALY'))).toEqual([
      `ANOMALY row_personal_changed row ${row.id}: its value at changes.entities.0.after.email does not match its commitment: changed, not erased`,
    ]);
  }, 60_000);
});
