import { Controller, HttpCode, type INestApplication, Param, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md, "Before/after diffs": a key with an `onUpdate` action that writes (`'CASCADE'`,
// `'SET NULL'`, `'SET DEFAULT'`) on an audited entity counts 1 in `changes.entitiesOmitted` for each
// reported update that writes a column it refers to, and an insert that overwrites columns on its
// conflict (`upsert()`, `orUpdate()`) counts as an update of them; the columns of its conflict
// target are set to the values they have, and count nothing.
// - upsert({ id, code }, ['id']) of a customer, meeting its conflict, changes the code that an
//   audited contract refers to (ON UPDATE CASCADE): 1 counted, as the same change by save() counts;
// - an audited order refers to the customer's id (ON UPDATE CASCADE): the upsert by id counts it not;
// - insert() of a new customer counts nothing.

@Entity('cascade_upsert_customer')
class UpsertCustomer {
  @PrimaryColumn('int') id!: number;
  @Column('text', { unique: true }) code!: string;
}

@AuditedEntity({ type: 'UpsertContract' })
@Entity('cascade_upsert_contract')
class UpsertContract {
  @PrimaryColumn('int') id!: number;
  @ManyToOne(() => UpsertCustomer, { onUpdate: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'customer_code', referencedColumnName: 'code' })
  customer!: UpsertCustomer;
}

@AuditedEntity({ type: 'UpsertOrder' })
@Entity('cascade_upsert_order')
class UpsertOrder {
  @PrimaryColumn('int') id!: number;
  @ManyToOne(() => UpsertCustomer, { onUpdate: 'CASCADE', nullable: true }) customer!: UpsertCustomer | null;
}

@Controller()
class UpsertController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('upsert-customers/:id')
  @HttpCode(201)
  async create(@Param('id') id: string): Promise<void> {
    const customer = await this.db.getRepository(UpsertCustomer).save({ id: Number(id), code: `C-${id}` });
    await this.db.getRepository(UpsertContract).save({ id: Number(id), customer });
    await this.db.getRepository(UpsertOrder).save({ id: Number(id), customer });
  }

  @Post('upsert-customers/:id/upsert')
  @HttpCode(204)
  async renameByUpsert(@Param('id') id: string): Promise<void> {
    await this.db.getRepository(UpsertCustomer).upsert({ id: Number(id), code: `U-${id}` }, ['id']);
  }

  @Post('upsert-customers/:id/save')
  @HttpCode(204)
  async renameBySave(@Param('id') id: string): Promise<void> {
    const repo = this.db.getRepository(UpsertCustomer);
    const customer = await repo.findOneByOrFail({ id: Number(id) });
    customer.code = `S-${id}`;
    await repo.save(customer);
  }

  @Post('upsert-customers/:id/insert')
  @HttpCode(204)
  async insert(@Param('id') id: string): Promise<void> {
    await this.db.getRepository(UpsertCustomer).insert({ id: Number(id), code: `I-${id}` });
  }
}

describe('a referenced column changed by upsert()', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(
      db,
      { mode: 'sync' },
      { entities: [UpsertCustomer, UpsertContract, UpsertOrder], controllers: [UpsertController] },
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const omitted = async (requestId: string) => {
    const changes = ((await changesOf(db, requestId)) as Record<string, unknown> | null) ?? {};
    return changes.entitiesOmitted;
  };

  it('counts the audited contract whose key upsert() of its customer changed, not the order keyed by the conflict target', async () => {
    await request(app.getHttpServer()).post('/upsert-customers/2').expect(201);
    await request(app.getHttpServer()).post('/upsert-customers/2/upsert').set('x-request-id', 'upsert-upsert').expect(204);
    expect(await db.query(`SELECT customer_code FROM cascade_upsert_contract WHERE id = 2`)).toEqual([{ customer_code: 'U-2' }]);
    expect(await omitted('upsert-upsert')).toBe(1);
  });

  it('counts the same change made by save()', async () => {
    await request(app.getHttpServer()).post('/upsert-customers/3').expect(201);
    await request(app.getHttpServer()).post('/upsert-customers/3/save').set('x-request-id', 'upsert-save').expect(204);
    expect(await db.query(`SELECT customer_code FROM cascade_upsert_contract WHERE id = 3`)).toEqual([{ customer_code: 'S-3' }]);
    expect(await omitted('upsert-save')).toBe(1);
  });

  it('counts nothing for an insert without a conflict clause', async () => {
    await request(app.getHttpServer()).post('/upsert-customers/4/insert').set('x-request-id', 'upsert-insert').expect(204);
    expect(await db.query(`SELECT code FROM cascade_upsert_customer WHERE id = 4`)).toEqual([{ code: 'I-4' }]);
    expect(await omitted('upsert-insert')).toBeUndefined();
  });
});
