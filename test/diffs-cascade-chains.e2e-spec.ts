import { Controller, Delete, HttpCode, type INestApplication, Param, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { ChildEntity, Column, DataSource, Entity, ManyToOne, PrimaryGeneratedColumn, TableInheritance } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md, "Before/after diffs": rows PostgreSQL itself writes by a foreign key's action are
// counted, not listed, along the chain of such keys: a row the database deletes (ON DELETE CASCADE)
// sets going the keys that refer to it in turn, through tables audited or not, and each key of an
// audited table so reached counts 1 in `changes.entitiesOmitted`; keys are taken by table, so a key
// that refers to a class of a single-table hierarchy is set going by the removal of any class of it.
// - remove() of a customer (not audited) deletes its accounts (not audited, CASCADE) and with them
//   the accounts' audited invoices (CASCADE): nothing listed, 1 counted;
// - remove() of an audited client deletes its audited deals (CASCADE) and their audited clauses
//   (CASCADE): the client's removal listed, 2 counted (deals, clauses);
// - an audited contract refers to a party (`@TableInheritance`, CASCADE): remove() of the party as
//   the company it is (`@ChildEntity`) deletes the contract: 1 counted;
// - a chain stops at a key whose action writes nothing: remove() of a supplier deletes its
//   deliveries (not audited, CASCADE), to which audited orders refer with RESTRICT: nothing counted;
// - a cycle of keys (an audited folder's parent, ON DELETE CASCADE) is followed once: 1 counted.

@Entity('cascade_chain_customer')
class PlainCustomer {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') name!: string;
}

@Entity('cascade_chain_account')
class PlainAccount {
  @PrimaryGeneratedColumn() id!: number;
  @ManyToOne(() => PlainCustomer, { onDelete: 'CASCADE', nullable: false }) customer!: PlainCustomer;
}

@AuditedEntity({ type: 'ChainInvoice' })
@Entity('cascade_chain_invoice')
class ChainInvoice {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') number!: string;
  @ManyToOne(() => PlainAccount, { onDelete: 'CASCADE', nullable: false }) account!: PlainAccount;
}

@AuditedEntity({ type: 'ChainClient' })
@Entity('cascade_chain_client')
class ChainClient {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') name!: string;
}

@AuditedEntity({ type: 'ChainDeal' })
@Entity('cascade_chain_deal')
class ChainDeal {
  @PrimaryGeneratedColumn() id!: number;
  @ManyToOne(() => ChainClient, { onDelete: 'CASCADE', nullable: false }) client!: ChainClient;
}

@AuditedEntity({ type: 'ChainClause' })
@Entity('cascade_chain_clause')
class ChainClause {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') text!: string;
  @ManyToOne(() => ChainDeal, { onDelete: 'CASCADE', nullable: false }) deal!: ChainDeal;
}

@Entity('cascade_chain_party')
@TableInheritance({ column: { type: 'varchar', name: 'kind' } })
class Party {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') name!: string;
}

@ChildEntity('company')
class Company extends Party {
  @Column('text', { nullable: true }) vat!: string | null;
}

@AuditedEntity({ type: 'PartyContract' })
@Entity('cascade_chain_party_contract')
class PartyContract {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') title!: string;
  @ManyToOne(() => Party, { onDelete: 'CASCADE', nullable: false }) party!: Party;
}

@Entity('cascade_chain_supplier')
class Supplier {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') name!: string;
}

@Entity('cascade_chain_delivery')
class Delivery {
  @PrimaryGeneratedColumn() id!: number;
  @ManyToOne(() => Supplier, { onDelete: 'CASCADE', nullable: false }) supplier!: Supplier;
}

/** Refers to a delivery with RESTRICT: the chain from a supplier stops at deliveries. */
@AuditedEntity({ type: 'ChainOrder' })
@Entity('cascade_chain_order')
class ChainOrder {
  @PrimaryGeneratedColumn() id!: number;
  @ManyToOne(() => Delivery, { onDelete: 'RESTRICT', nullable: true }) delivery!: Delivery | null;
}

@AuditedEntity({ type: 'ChainFolder' })
@Entity('cascade_chain_folder')
class ChainFolder {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') name!: string;
  @ManyToOne(() => ChainFolder, { onDelete: 'CASCADE', nullable: true }) parent!: ChainFolder | null;
}

@Controller()
class ChainsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('plain-customers')
  async createPlain(): Promise<{ id: number }> {
    const customer = await this.db.getRepository(PlainCustomer).save({ name: 'Acme' });
    const account = await this.db.getRepository(PlainAccount).save({ customer });
    await this.db.getRepository(ChainInvoice).save([
      { number: 'INV-1', account },
      { number: 'INV-2', account },
    ]);
    return { id: customer.id };
  }

  @Delete('plain-customers/:id')
  @HttpCode(204)
  async removePlain(@Param('id') id: string): Promise<void> {
    const repo = this.db.getRepository(PlainCustomer);
    await repo.remove(await repo.findOneByOrFail({ id: Number(id) }));
  }

  @Post('companies')
  async createCompany(): Promise<{ id: number }> {
    const company = await this.db.getRepository(Company).save({ name: 'Initech', vat: 'X1' });
    await this.db.getRepository(PartyContract).save({ title: 'Supply', party: company });
    return { id: company.id };
  }

  @Delete('companies/:id')
  @HttpCode(204)
  async removeCompany(@Param('id') id: string): Promise<void> {
    const repo = this.db.getRepository(Company);
    await repo.remove(await repo.findOneByOrFail({ id: Number(id) }));
  }

  @Post('suppliers')
  async createSupplier(): Promise<{ id: number }> {
    const supplier = await this.db.getRepository(Supplier).save({ name: 'Umbrella' });
    await this.db.getRepository(Delivery).save({ supplier });
    await this.db.getRepository(ChainOrder).save({ delivery: null });
    return { id: supplier.id };
  }

  @Delete('suppliers/:id')
  @HttpCode(204)
  async removeSupplier(@Param('id') id: string): Promise<void> {
    const repo = this.db.getRepository(Supplier);
    await repo.remove(await repo.findOneByOrFail({ id: Number(id) }));
  }

  @Post('folders')
  async createFolders(): Promise<{ id: number }> {
    const repo = this.db.getRepository(ChainFolder);
    const root = await repo.save({ name: 'root', parent: null });
    const child = await repo.save({ name: 'child', parent: root });
    await repo.save({ name: 'grandchild', parent: child });
    return { id: root.id };
  }

  @Delete('folders/:id')
  @HttpCode(204)
  async removeFolder(@Param('id') id: string): Promise<void> {
    const repo = this.db.getRepository(ChainFolder);
    await repo.remove(await repo.findOneByOrFail({ id: Number(id) }));
  }

  @Post('clients')
  async createClient(): Promise<{ id: number }> {
    const client = await this.db.getRepository(ChainClient).save({ name: 'Globex' });
    const deal = await this.db.getRepository(ChainDeal).save({ client });
    await this.db.getRepository(ChainClause).save({ text: 'Confidentiality', deal });
    return { id: client.id };
  }

  @Delete('clients/:id')
  @HttpCode(204)
  async removeClient(@Param('id') id: string): Promise<void> {
    const repo = this.db.getRepository(ChainClient);
    await repo.remove(await repo.findOneByOrFail({ id: Number(id) }));
  }
}

describe('audited rows a chain of foreign key actions writes', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(
      db,
      { mode: 'sync' },
      {
        entities: [
          PlainCustomer,
          PlainAccount,
          ChainInvoice,
          ChainClient,
          ChainDeal,
          ChainClause,
          Party,
          Company,
          PartyContract,
          Supplier,
          Delivery,
          ChainOrder,
          ChainFolder,
        ],
        controllers: [ChainsController],
      },
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('counts the audited invoices deleted through an account that is not audited', async () => {
    const created = await request(app.getHttpServer()).post('/plain-customers');
    expect(created.status).toBe(201);
    const { id } = created.body as { id: number };
    expect(await db.query('SELECT count(*)::int AS n FROM cascade_chain_invoice')).toEqual([{ n: 2 }]);
    const removed = await request(app.getHttpServer()).delete(`/plain-customers/${id}`).set('x-request-id', 'chain-plain');
    expect(removed.status).toBe(204);
    // The database deleted the two audited invoices with the account.
    expect(await db.query('SELECT count(*)::int AS n FROM cascade_chain_invoice')).toEqual([{ n: 0 }]);
    const changes = ((await changesOf(db, 'chain-plain')) as Record<string, unknown> | null) ?? {};
    expect({ listed: changes.entities ?? [], omitted: changes.entitiesOmitted }).toEqual({
      listed: [],
      omitted: 1,
    });
  });

  it('counts the audited clauses deleted with the audited contracts of an audited client', async () => {
    const created = await request(app.getHttpServer()).post('/clients');
    expect(created.status).toBe(201);
    const { id } = created.body as { id: number };
    const removed = await request(app.getHttpServer()).delete(`/clients/${id}`).set('x-request-id', 'chain-audited');
    expect(removed.status).toBe(204);
    expect(
      await db.query(
        'SELECT (SELECT count(*)::int FROM cascade_chain_deal) AS deals, (SELECT count(*)::int FROM cascade_chain_clause) AS clauses',
      ),
    ).toEqual([{ deals: 0, clauses: 0 }]);
    const changes = await changesOf(db, 'chain-audited');
    // Two audited tables written by the database (deals, clauses): the count names each.
    expect({
      listed: ((changes.entities ?? []) as { type: string; op: string }[]).map((change) => `${change.type} ${change.op}`),
      omitted: changes.entitiesOmitted,
    }).toEqual({ listed: ['ChainClient remove'], omitted: 2 });
  });

  it('counts the audited contract deleted with a party removed as its subclass', async () => {
    const created = await request(app.getHttpServer()).post('/companies');
    expect(created.status).toBe(201);
    const { id } = created.body as { id: number };
    const removed = await request(app.getHttpServer()).delete(`/companies/${id}`).set('x-request-id', 'chain-company');
    expect(removed.status).toBe(204);
    expect(await db.query('SELECT count(*)::int AS n FROM cascade_chain_party_contract')).toEqual([{ n: 0 }]);
    const changes = ((await changesOf(db, 'chain-company')) as Record<string, unknown> | null) ?? {};
    expect({ listed: changes.entities ?? [], omitted: changes.entitiesOmitted }).toEqual({ listed: [], omitted: 1 });
  });

  it('stops the chain at a key whose action writes nothing', async () => {
    const created = await request(app.getHttpServer()).post('/suppliers');
    expect(created.status).toBe(201);
    const { id } = created.body as { id: number };
    const removed = await request(app.getHttpServer()).delete(`/suppliers/${id}`).set('x-request-id', 'chain-supplier');
    expect(removed.status).toBe(204);
    expect(await db.query('SELECT count(*)::int AS n FROM cascade_chain_delivery')).toEqual([{ n: 0 }]);
    const changes = ((await changesOf(db, 'chain-supplier')) as Record<string, unknown> | null) ?? {};
    expect({ listed: changes.entities ?? [], omitted: changes.entitiesOmitted }).toEqual({ listed: [], omitted: undefined });
  });

  it('follows a key that refers to its own table once', async () => {
    const created = await request(app.getHttpServer()).post('/folders');
    expect(created.status).toBe(201);
    const { id } = created.body as { id: number };
    const removed = await request(app.getHttpServer()).delete(`/folders/${id}`).set('x-request-id', 'chain-folder');
    expect(removed.status).toBe(204);
    // The database deleted the child and the grandchild with the root.
    expect(await db.query('SELECT count(*)::int AS n FROM cascade_chain_folder')).toEqual([{ n: 0 }]);
    const changes = await changesOf(db, 'chain-folder');
    expect({
      listed: ((changes.entities ?? []) as { type: string; op: string }[]).map((change) => `${change.type} ${change.op}`),
      omitted: changes.entitiesOmitted,
    }).toEqual({ listed: ['ChainFolder remove'], omitted: 1 });
  });
});
