import { Body, Controller, type INestApplication, Param, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, ManyToOne, OneToMany, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// Promise (docs/GUIDE.md, "Before/after diffs"): an `insert` made by "`save()` of a new row" lists
// "every property set, `before` `null`", and "A many-to-one or owning one-to-one relation is
// shown by the related entity's id (`"owner": [1, 2]` …), so a `save()` that changes only a
// relation is reported too".
//
// Break: rows inserted by a cascade (`@OneToMany(..., { cascade: true })`, the usual way to save
// an order with its lines, a customer with its contracts) get their owner from TypeORM's own
// bookkeeping, not from a property of the child object. The diff reads the relation from the child
// object only, finds nothing, and leaves the owner out of the child's insert: the trail shows
// the contract inserted with no customer, while the row in the table holds the customer's id.
//
// The same bookkeeping moves a contract to another client when that client's list takes it
// (`client.contracts.push(contract); save(client)`): TypeORM UPDATEs the contract's foreign key,
// but the contract object never held a client, so no change of it is reported at all.
//
// Observed: the cascaded insert's `fields` hold `id` and `title` only (no `client`); the move
// leaves no `ClientContract` change on the row and nothing in `entitiesOmitted`, while the table's
// `clientId` went from the first client to the second.
//
// Severity: medium (an audited relation, set by the write, is missing from the diff: the
// trail cannot tell whose contract was created, nor that a contract changed hands).
//
// Fix guess: for an insert, read a join column's value from what TypeORM wrote (the subject's
// value set or the entity's relation id after the insert: `relation.inverseRelation` of the
// parent being saved), or fall back to the join column's value TypeORM returns; at least show
// `"unknown"` rather than leave a property that was set out of "every property set".

@AuditedEntity({ type: 'Client' })
@Entity('probe_client')
class Client {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') name!: string;
  @OneToMany(() => ClientContract, (contract) => contract.client, { cascade: true }) contracts!: ClientContract[];
}

@AuditedEntity({ type: 'ClientContract' })
@Entity('probe_client_contract')
class ClientContract {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') title!: string;
  @ManyToOne(() => Client, (client) => client.contracts, { nullable: false }) client!: Client;
}

@Controller()
class ClientsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('clients')
  async create(@Body() body: { name: string; titles: string[] }): Promise<{ id: number }> {
    const repo = this.db.getRepository(Client);
    const client = await repo.save(repo.create({ name: body.name, contracts: body.titles.map((title) => ({ title })) }));
    return { id: client.id };
  }

  /** Moves a contract to another client through the client's list (the one-to-many side). */
  @Post('clients/:id/take/:contract')
  async take(@Param('id') id: string, @Param('contract') contract: string): Promise<void> {
    const repo = this.db.getRepository(Client);
    const client = await repo.findOneOrFail({ where: { id: Number(id) }, relations: { contracts: true } });
    client.contracts.push(await this.db.getRepository(ClientContract).findOneByOrFail({ id: Number(contract) }));
    await repo.save(client);
  }
}

describe('probe: the owner of a row inserted by a cascade', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { entities: [Client, ClientContract], controllers: [ClientsController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it("lists the client on the contract's insert, as the table holds it", async () => {
    const created = await request(app.getHttpServer())
      .post('/clients')
      .set('x-request-id', 'probe-cascade-insert')
      .send({ name: 'Acme', titles: ['Master agreement'] });
    expect(created.status).toBe(201);
    const { id } = created.body as { id: number };
    const [contract] = await db.query<{ id: number; clientId: number }>('SELECT id, "clientId" FROM probe_client_contract');
    expect(contract.clientId).toBe(id);
    const changes = await changesOf(db, 'probe-cascade-insert');
    const inserted = ((changes.entities ?? []) as { type: string; op: string; fields?: Record<string, unknown> }[]).find(
      (change) => change.type === 'ClientContract',
    );
    expect(inserted).toEqual({
      type: 'ClientContract',
      id: contract.id,
      op: 'insert',
      fields: { id: [null, contract.id], title: [null, 'Master agreement'], client: [null, id] },
    });
  });

  it("lists the contract's new client when a client takes it through its list", async () => {
    const first = await request(app.getHttpServer())
      .post('/clients')
      .send({ name: 'First', titles: ['Lease'] });
    const second = await request(app.getHttpServer()).post('/clients').send({ name: 'Second', titles: [] });
    const from = (first.body as { id: number }).id;
    const to = (second.body as { id: number }).id;
    const [lease] = await db.query<{ id: number }>("SELECT id FROM probe_client_contract WHERE title = 'Lease'");
    const moved = await request(app.getHttpServer()).post(`/clients/${to}/take/${lease.id}`).set('x-request-id', 'probe-cascade-take');
    expect(moved.status).toBe(201);
    expect(await db.query('SELECT "clientId" FROM probe_client_contract WHERE id = $1', [lease.id])).toEqual([{ clientId: to }]);
    const changes = await changesOf(db, 'probe-cascade-take');
    const change = ((changes.entities ?? []) as { type: string; id?: unknown; op?: string; fields?: Record<string, unknown> }[]).find(
      (entry) => entry.type === 'ClientContract',
    );
    expect({ id: change?.id, op: change?.op, omitted: changes.entitiesOmitted }).toEqual({
      id: lease.id,
      op: 'update',
      omitted: undefined,
    });
    // Its old client as loaded (or "unknown" where TypeORM did not load it), and the new one.
    expect([
      [from, to],
      ['unknown', to],
    ]).toContainEqual(change?.fields?.client);
  });
});
