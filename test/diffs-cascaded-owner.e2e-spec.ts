import { Body, Controller, type INestApplication, Param, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, JoinColumn, ManyToOne, OneToMany, OneToOne, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md, "Before/after diffs": a row lists no change that was not made and hides none.
// TypeORM writes the join column of a row saved through the other side's one-to-many list
// (`@OneToMany(..., { cascade: true })`) from its own bookkeeping: the child object never holds
// its owner. The row still lists the owner the table holds: on the child's insert
// (`client.contracts = [contract]`), and on its move to another owner
// (`other.contracts.push(contract)`), `[old, new]`, the old owner as it was in the table.

@AuditedEntity({ type: 'Client' })
@Entity('owner_client')
class Client {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') name!: string;
  @OneToMany(() => ClientContract, (contract) => contract.client, { cascade: true }) contracts!: ClientContract[];
}

@AuditedEntity({ type: 'ClientContract' })
@Entity('owner_client_contract')
class ClientContract {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') title!: string;
  @ManyToOne(() => Client, (client) => client.contracts, { nullable: false }) client!: Client;
}

/** The same through the inverse side of a one-to-one: the badge holds the join column, the holder's `badge` sets it. */
@AuditedEntity({ type: 'Holder' })
@Entity('owner_holder')
class Holder {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') name!: string;
  @OneToOne(() => Badge, (badge) => badge.holder, { cascade: true }) badge!: Badge | null;
}

@AuditedEntity({ type: 'Badge' })
@Entity('owner_badge')
class Badge {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') code!: string;
  @OneToOne(() => Holder, (holder) => holder.badge, { nullable: true }) @JoinColumn() holder!: Holder | null;
}

type Change = { type: string; id?: unknown; op?: string; fields?: Record<string, unknown> };

@Controller()
class ClientsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Saves clients with their contracts in one `save()`: the contracts go in one INSERT, each with its own client. */
  @Post('clients')
  async create(@Body() body: { name: string; titles: string[] }[]): Promise<{ ids: number[] }> {
    const repo = this.db.getRepository(Client);
    const clients = await repo.save(body.map(({ name, titles }) => repo.create({ name, contracts: titles.map((title) => ({ title })) })));
    return { ids: clients.map((client) => client.id) };
  }

  /** Moves a contract to another client through that client's list; `loaded`: the contract is loaded with its client. */
  @Post('clients/:id/take/:contract')
  async take(
    @Param('id') id: string,
    @Param('contract') contract: string,
    @Body() body: { loaded?: boolean; title?: string },
  ): Promise<void> {
    const repo = this.db.getRepository(Client);
    const client = await repo.findOneOrFail({ where: { id: Number(id) }, relations: { contracts: true } });
    const taken = await this.db
      .getRepository(ClientContract)
      .findOneOrFail({ where: { id: Number(contract) }, relations: { client: body.loaded === true } });
    if (body.title !== undefined) taken.title = body.title;
    client.contracts.push(taken);
    await repo.save(client);
  }

  /** Adds a new contract to a saved client's list: the client itself does not change. */
  @Post('clients/:id/contracts')
  async add(@Param('id') id: string, @Body() body: { title: string }): Promise<void> {
    const repo = this.db.getRepository(Client);
    const client = await repo.findOneOrFail({ where: { id: Number(id) }, relations: { contracts: true } });
    client.contracts.push(this.db.getRepository(ClientContract).create({ title: body.title }));
    await repo.save(client);
  }

  /** Saves a holder with a new badge, or (`badge`) gives a saved holder a badge another holds. */
  @Post('holders')
  async holder(@Body() body: { name: string; code?: string; badge?: string }): Promise<{ id: number }> {
    const repo = this.db.getRepository(Holder);
    const badge = body.badge === undefined ? undefined : await this.db.getRepository(Badge).findOneByOrFail({ code: body.badge });
    const holder = await repo.save(
      repo.create({ name: body.name, badge: badge ?? (body.code === undefined ? undefined : { code: body.code }) }),
    );
    return { id: holder.id };
  }

  /** Renames a contract saved on its own, loaded without its client. */
  @Post('contracts/:id/rename')
  async rename(@Param('id') id: string, @Body() body: { title: string }): Promise<void> {
    const repo = this.db.getRepository(ClientContract);
    const contract = await repo.findOneByOrFail({ id: Number(id) });
    contract.title = body.title;
    await repo.save(contract);
  }
}

describe('diffs: owners TypeORM sets through a one-to-many list', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(
      db,
      { mode: 'sync' },
      { entities: [Client, ClientContract, Holder, Badge], controllers: [ClientsController] },
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  async function created(clients: { name: string; titles: string[] }[], requestId = `create-${clients[0].name}`): Promise<number[]> {
    const answer = await request(app.getHttpServer()).post('/clients').set('x-request-id', requestId).send(clients);
    expect(answer.status).toBe(201);
    return (answer.body as { ids: number[] }).ids;
  }

  async function contractsOf(requestId: string): Promise<{ changes: Record<string, unknown>; contracts: Change[] }> {
    const changes = await changesOf(db, requestId);
    const contracts = ((changes.entities ?? []) as Change[]).filter((change) => change.type === 'ClientContract');
    return { changes, contracts };
  }

  async function contractNamed(title: string): Promise<{ id: number; clientId: number }> {
    const [row] = await db.query<{ id: number; clientId: number }>('SELECT id, "clientId" FROM owner_client_contract WHERE title = $1', [
      title,
    ]);
    return row;
  }

  it("lists each contract inserted through its client's list with the client the table holds, several clients in one save()", async () => {
    const [acme, globex] = await created(
      [
        { name: 'Acme', titles: ['Acme master agreement', 'Acme NDA'] },
        { name: 'Globex', titles: ['Globex lease'] },
      ],
      'cascaded-insert',
    );
    const rows = await Promise.all(['Acme master agreement', 'Acme NDA', 'Globex lease'].map(contractNamed));
    expect(rows.map((row) => row.clientId)).toEqual([acme, acme, globex]);
    const { changes, contracts } = await contractsOf('cascaded-insert');
    expect(contracts).toHaveLength(3);
    for (const [row, title] of [
      [rows[0], 'Acme master agreement'],
      [rows[1], 'Acme NDA'],
      [rows[2], 'Globex lease'],
    ] as const) {
      expect(contracts).toContainEqual({
        type: 'ClientContract',
        id: row.id,
        op: 'insert',
        fields: { id: [null, row.id], title: [null, title], client: [null, row.clientId] },
      });
    }
    expect(changes.entitiesOmitted).toBeUndefined();
  });

  it("lists the client of a contract added to a saved client's list", async () => {
    const [client] = await created([{ name: 'Initech', titles: ['Initech lease'] }]);
    const added = await request(app.getHttpServer())
      .post(`/clients/${client}/contracts`)
      .set('x-request-id', 'cascaded-add')
      .send({ title: 'Initech support' });
    expect(added.status).toBe(201);
    const row = await contractNamed('Initech support');
    expect(row.clientId).toBe(client);
    const { changes, contracts } = await contractsOf('cascaded-add');
    expect(contracts).toEqual([
      {
        type: 'ClientContract',
        id: row.id,
        op: 'insert',
        fields: { id: [null, row.id], title: [null, 'Initech support'], client: [null, client] },
      },
    ]);
    expect(changes.entitiesOmitted).toBeUndefined();
  });

  it("lists a contract's old and new client when another client takes it through its list", async () => {
    const [from, to] = await created([
      { name: 'First', titles: ['First lease'] },
      { name: 'Second', titles: [] },
    ]);
    const lease = await contractNamed('First lease');
    const moved = await request(app.getHttpServer()).post(`/clients/${to}/take/${lease.id}`).set('x-request-id', 'cascaded-take').send({});
    expect(moved.status).toBe(201);
    expect(await contractNamed('First lease')).toEqual({ id: lease.id, clientId: to });
    const { changes, contracts } = await contractsOf('cascaded-take');
    expect(contracts).toEqual([{ type: 'ClientContract', id: lease.id, op: 'update', fields: { client: [from, to] } }]);
    expect(changes.entitiesOmitted).toBeUndefined();
  });

  it('lists the move the same when the contract was loaded with its old client', async () => {
    const [from, to] = await created([
      { name: 'Third', titles: ['Third lease'] },
      { name: 'Fourth', titles: [] },
    ]);
    const lease = await contractNamed('Third lease');
    const moved = await request(app.getHttpServer())
      .post(`/clients/${to}/take/${lease.id}`)
      .set('x-request-id', 'cascaded-take-loaded')
      .send({ loaded: true });
    expect(moved.status).toBe(201);
    expect(await contractNamed('Third lease')).toEqual({ id: lease.id, clientId: to });
    const { changes, contracts } = await contractsOf('cascaded-take-loaded');
    expect(contracts).toEqual([{ type: 'ClientContract', id: lease.id, op: 'update', fields: { client: [from, to] } }]);
    expect(changes.entitiesOmitted).toBeUndefined();
  });

  it('lists a move made with a change of the contract itself, both in one change', async () => {
    const [from, to] = await created([
      { name: 'Fifth', titles: ['Fifth lease'] },
      { name: 'Sixth', titles: [] },
    ]);
    const lease = await contractNamed('Fifth lease');
    const moved = await request(app.getHttpServer())
      .post(`/clients/${to}/take/${lease.id}`)
      .set('x-request-id', 'cascaded-take-renamed')
      .send({ title: 'Sixth lease' });
    expect(moved.status).toBe(201);
    expect(await contractNamed('Sixth lease')).toEqual({ id: lease.id, clientId: to });
    const { changes, contracts } = await contractsOf('cascaded-take-renamed');
    expect(contracts).toEqual([
      { type: 'ClientContract', id: lease.id, op: 'update', fields: { title: ['Fifth lease', 'Sixth lease'], client: [from, to] } },
    ]);
    expect(changes.entitiesOmitted).toBeUndefined();
  });

  it("lists a badge's holder, set through the holder's inverse one-to-one, on its insert and when another holder takes it", async () => {
    const first = await request(app.getHttpServer())
      .post('/holders')
      .set('x-request-id', 'badge-inserted')
      .send({ name: 'Ann', code: 'B-1' });
    const ann = (first.body as { id: number }).id;
    const [badge] = await db.query<{ id: number; holderId: number }>(`SELECT id, "holderId" FROM owner_badge WHERE code = 'B-1'`);
    expect(badge.holderId).toBe(ann);
    const inserted = ((await changesOf(db, 'badge-inserted')).entities as Change[]).filter((change) => change.type === 'Badge');
    expect(inserted).toEqual([
      { type: 'Badge', id: badge.id, op: 'insert', fields: { id: [null, badge.id], code: [null, 'B-1'], holder: [null, ann] } },
    ]);
    const second = await request(app.getHttpServer())
      .post('/holders')
      .set('x-request-id', 'badge-taken')
      .send({ name: 'Bob', badge: 'B-1' });
    const bob = (second.body as { id: number }).id;
    expect(await db.query(`SELECT "holderId" FROM owner_badge WHERE id = $1`, [badge.id])).toEqual([{ holderId: bob }]);
    const changes = await changesOf(db, 'badge-taken');
    expect((changes.entities as Change[]).filter((change) => change.type === 'Badge')).toEqual([
      { type: 'Badge', id: badge.id, op: 'update', fields: { holder: [ann, bob] } },
    ]);
    expect(changes.entitiesOmitted).toBeUndefined();
  });

  it('lists no client for a contract saved on its own that keeps its client', async () => {
    await created([{ name: 'Seventh', titles: ['Seventh lease'] }]);
    const lease = await contractNamed('Seventh lease');
    const renamed = await request(app.getHttpServer())
      .post(`/contracts/${lease.id}/rename`)
      .set('x-request-id', 'contract-renamed')
      .send({ title: 'Seventh lease, renewed' });
    expect(renamed.status).toBe(201);
    expect(await contractNamed('Seventh lease, renewed')).toEqual(lease);
    const { changes, contracts } = await contractsOf('contract-renamed');
    expect(contracts).toEqual([
      { type: 'ClientContract', id: lease.id, op: 'update', fields: { title: ['Seventh lease', 'Seventh lease, renewed'] } },
    ]);
    expect(changes.entitiesOmitted).toBeUndefined();
  });
});
