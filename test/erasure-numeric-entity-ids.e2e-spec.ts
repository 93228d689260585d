import { Body, Controller, type INestApplication, Param, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { Audited, AuditedEntity, AuditQueryService, AuditService } from '../src/audit';
import { startDiffsApp } from './support/diffs-app';
import { sealingKeys, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';

// docs/PRIVACY.md "Erasure": `{ entityType, entityId }` also erases "the rows whose
// `changes.entities` holds a change of it ... an id as text or, for the text of a whole number,
// as a number". An entity keyed by a bigint read as a JS number (a common `pg` type parser, or a
// transformer) records its id as a JSON number: 1234567890123456 (16 digits) is a safe integer,
// recorded exactly, and must be found as 123456789012345 (15 digits) is.
@AuditedEntity({ type: 'Account' })
@Entity('probe_account')
class Account {
  @PrimaryColumn('bigint', { transformer: { to: (value: number) => value, from: (value: string) => Number(value) } }) id!: number;
  @Column('text') holder!: string;
}

@Controller()
class OrdersController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** One order's request that opens an account: the account's diff sits on the order's row. */
  @Post('orders/:id/accounts')
  @Audited('order_account_opened', { entityType: 'Order', entityId: { param: 'id' } })
  async open(@Param('id') _id: string, @Body() body: { account: number; holder: string }): Promise<void> {
    await this.db.getRepository(Account).save(this.db.getRepository(Account).create({ id: body.account, holder: body.holder }));
  }
}

describe('an entity found on another entity’s row by a numeric id of 16 digits', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const keys = sealingKeys();
  const entrySecret = randomBytes(32).toString('base64');

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(
      db,
      {
        mode: 'sync',
        privacy: { personalData: ['changes.body.holder', 'changes.entities[].fields.holder'] },
        integrity: {
          enabled: true,
          intervalMs: 3_600_000,
          signingKey: keys.privatePem,
          entryKeys: [{ id: 'k1', secret: entrySecret }],
        },
      },
      { entities: [Account], controllers: [OrdersController] },
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it.each([
    ['15 digits', 123_456_789_012_345, 'order-15', 'Jane Roe'],
    ['16 digits', 1_234_567_890_123_456, 'order-16', 'John Doe'],
  ])(
    'finds and erases the change of an account keyed by %s on the order’s row',
    async (_digits, account, order, holder) => {
      await request(app.getHttpServer()).post(`/orders/${order}/accounts`).send({ account, holder }).expect(201);
      const showing = async () =>
        (await app.get(AuditQueryService).search({ entityId: order })).items.filter((row) => JSON.stringify(row).includes(holder)).length;
      expect(await showing()).toBe(1);
      const [stored] = await db.query<{ id: unknown }>(
        `SELECT changes -> 'entities' -> 0 -> 'id' AS id FROM audit_log WHERE action = 'order_account_opened' AND entity_id = $1`,
        [order],
      );
      // Recorded as a JSON number, exactly.
      expect(stored.id).toBe(account);
      // The account's history finds its change on the order's row (docs/GUIDE.md, an entity's history).
      const history = await app.get(AuditQueryService).history('Account', String(account));
      const result = await app.get(AuditService).erase({ entityType: 'Account', entityId: String(account), requestedBy: 'dpo' });
      expect({ history: history.items.map((row) => row.entityId), erased: result.erased, showing: await showing() }).toEqual({
        history: [order],
        erased: 1,
        showing: 0,
      });
    },
    60_000,
  );

  // Runs after both cases: audit-verify (which reads the id as text) finds nothing the erasures left.
  it('leaves audit-verify clean after both erasures', async () => {
    const report = await verify(db.url(), `--public-key=${keys.publicPem}`, '--entry-key', `k1:${entrySecret}`);
    expect({ code: report.code, anomalies: report.anomalies }).toEqual({ code: 0, anomalies: [] });
  }, 60_000);
});
