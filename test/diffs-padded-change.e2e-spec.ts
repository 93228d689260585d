import { Body, Controller, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Audited, AuditedEntity, AuditQueryService } from '../src/audit';
import { changesOf, Contract, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md (diffs): "a client that pads anything it sends cannot wipe the record of what its
// request changed". What a client sends may be the new value of the column it changes: padded
// past half of maxEntryBytes (64 KiB), the row still says which entity it changed and which
// property, the value cut and marked with its size, beside the other changes of the request.
// Only changes whose names alone pass the half are left out, from the last one, and counted.
const HALF = 32 * 1024;

/** An audited entity with a JSON column, a binary one and a text one. */
@AuditedEntity({ type: 'Document' })
@Entity('document')
class Document {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') note!: string;
  @Column('jsonb') data!: unknown;
  @Column('bytea') content!: Buffer;
}

@Controller()
class TransferController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Patch('contracts/:id/take-over/:other')
  @Audited('contract_taken_over', { entityType: 'Contract', entityId: { param: 'id' } })
  takeOver(@Param('id') id: string, @Param('other') other: string, @Body() body: { counterparty: string }): Promise<void> {
    return this.db.transaction(async (manager) => {
      const taker = await manager.findOneByOrFail(Contract, { id });
      const given = await manager.findOneByOrFail(Contract, { id: other });
      taker.counterparty = body.counterparty;
      given.counterparty = `${given.counterparty} (handed over)`;
      await manager.save([taker, given]);
    });
  }

  @Post('contracts/batch')
  batch(@Body() body: { count: number; length: number }): Promise<void> {
    return this.db.transaction(async (manager) => {
      for (let i = 0; i < body.count; i++) {
        await manager.save(manager.create(Contract, { title: 'Lease', counterparty: padded(i, body.length) }));
      }
    });
  }

  @Post('documents')
  async document(@Body() body: { note: string; data: unknown; content: string }): Promise<{ id: number }> {
    const saved = await this.db.getRepository(Document).save({ note: body.note, data: body.data, content: Buffer.from(body.content) });
    return { id: saved.id };
  }
}

/** A counterparty of `length` characters, numbered so that the contracts sort in the order they were saved. */
const padded = (i: number, length: number) => `${String(i).padStart(3, '0')} ${'p'.repeat(length - 4)}`;

interface StoredChange {
  type: string;
  id: unknown;
  op: string;
  fields: Record<string, [unknown, unknown]>;
}
interface Stored {
  entities?: StoredChange[];
  entitiesOmitted?: number;
}

/** A value cut for its size, as the row marks it: its size as JSON, measured as it was captured (a few bytes of slack). */
const cut = (bytes: number) => ({
  _truncated: true,
  originalBytes: {
    asymmetricMatch: (n: unknown) => typeof n === 'number' && n >= bytes - 64 && n <= bytes + 64,
    toString: () => `~${bytes}`,
  },
});
const diffsBytes = (changes: Stored) =>
  Buffer.byteLength(JSON.stringify({ entities: changes.entities, entitiesOmitted: changes.entitiesOmitted }));

describe('a padded value inside the change a client makes', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  const create = async (counterparty: string, requestId = `create-${Math.random()}`) =>
    (
      (
        await request(app.getHttpServer())
          .post('/contracts')
          .set('x-request-id', requestId)
          .send({ title: 'Lease', counterparty })
          .expect(201)
      ).body as { id: string }
    ).id;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [TransferController], entities: [Document] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('keeps the change whose new value the client padded (its contract and property), beside the other contract’s', async () => {
    const given = await create('Jane Roe');
    const taker = await create('Acme Ltd');
    const padded = `Acme Group ${'x'.repeat(40_000)}`;
    await request(app.getHttpServer())
      .patch(`/contracts/${taker}/take-over/${given}`)
      .set('x-request-id', 'take-over')
      .send({ counterparty: padded })
      .expect(200);
    const changes = (await changesOf(db, 'take-over')) as Stored;
    expect(changes.entitiesOmitted).toBeUndefined();
    expect(changes.entities).toEqual(
      expect.arrayContaining([
        { type: 'Contract', id: taker, op: 'update', fields: { counterparty: ['Acme Ltd', cut(padded.length + 2)] } },
        { type: 'Contract', id: given, op: 'update', fields: { counterparty: ['Jane Roe', 'Jane Roe (handed over)'] } },
      ]),
    );
    expect(changes.entities).toHaveLength(2);
  });

  it('keeps the field when both its old and its new value are padded, and an insert of a padded value', async () => {
    const old = `Old ${'o'.repeat(50_000)}`;
    const id = await create(old, 'padded-insert');
    expect(((await changesOf(db, 'padded-insert')) as Stored).entities).toEqual([
      { type: 'Contract', id, op: 'insert', fields: { id: [null, id], title: [null, 'Lease'], counterparty: [null, cut(old.length + 2)] } },
    ]);
    const next = `New ${'n'.repeat(45_000)}`;
    await request(app.getHttpServer())
      .patch(`/contracts/${id}`)
      .set('x-request-id', 'both-padded')
      .send({ counterparty: next })
      .expect(200);
    expect(((await changesOf(db, 'both-padded')) as Stored).entities).toEqual([
      { type: 'Contract', id, op: 'update', fields: { counterparty: [cut(old.length + 2), cut(next.length + 2)] } },
    ]);
  });

  it('keeps every one of many changes each just under the half, their values cut as needed, within the half', async () => {
    await request(app.getHttpServer())
      .post('/contracts/batch')
      .set('x-request-id', 'many-large')
      .send({ count: 8, length: HALF - 400 })
      .expect(201);
    const changes = (await changesOf(db, 'many-large')) as Stored;
    expect(changes.entitiesOmitted).toBeUndefined();
    expect(changes.entities?.map((change) => [change.type, change.op, Object.keys(change.fields)])).toEqual(
      Array.from({ length: 8 }, () => ['Contract', 'insert', ['id', 'title', 'counterparty']]),
    );
    for (const change of changes.entities ?? []) expect(change.id).toEqual(expect.any(String));
    const shown = (changes.entities ?? []).map((change) => change.fields.counterparty[1]);
    expect(shown.filter((value) => typeof value === 'string').length).toBeLessThanOrEqual(1);
    expect(shown.filter((value) => typeof value !== 'string')).toEqual(expect.arrayContaining([cut(HALF - 400 + 2)]));
    expect(diffsBytes(changes)).toBeLessThanOrEqual(HALF);
  });

  it('leaves out whole changes, from the last one, only when their names alone pass the half', async () => {
    await request(app.getHttpServer())
      .post('/contracts/batch')
      .set('x-request-id', 'many-small')
      .send({ count: 400, length: 1000 })
      .expect(201);
    const changes = (await changesOf(db, 'many-small')) as Stored;
    const kept = changes.entities ?? [];
    expect(kept.length).toBeGreaterThan(100);
    expect(kept.length + (changes.entitiesOmitted ?? 0)).toBe(400);
    expect(changes.entitiesOmitted).toBeGreaterThan(0);
    // The first changes, in order, each with its fields; every value that could not stay is marked with its size.
    const created = await db.query<{ id: string }>(
      `SELECT id FROM contract WHERE counterparty LIKE '___ p%' AND length(counterparty) = 1000 ORDER BY counterparty`,
    );
    expect(kept.map((change) => change.id)).toEqual(created.slice(0, kept.length).map((row) => row.id));
    const values = kept.map((change) => change.fields.counterparty[1]);
    expect(values).toEqual(values.map((value) => (typeof value === 'string' ? expect.stringMatching(/^\d{3} p{996}$/) : cut(1002))));
    expect(values.filter((value) => typeof value !== 'string').length).toBeGreaterThan(values.length / 2);
    expect(diffsBytes(changes)).toBeLessThanOrEqual(HALF);
  });

  it('keeps the padded change on the row record() writes in the transaction', async () => {
    const padded = `Acme ${'r'.repeat(40_000)}`;
    const res = await request(app.getHttpServer()).post('/contracts/atomic').send({ title: 'Lease', counterparty: padded }).expect(201);
    const [row] = await db.query<{ changes: Stored }>(`SELECT changes FROM audit_log WHERE action = 'contract_created_atomically'`);
    expect(row.changes.entities).toEqual([
      {
        type: 'Contract',
        id: (res.body as { id: string }).id,
        op: 'insert',
        fields: { id: [null, (res.body as { id: string }).id], title: [null, 'Lease'], counterparty: [null, cut(padded.length + 2)] },
      },
    ]);
  });

  it('cuts a padded JSON value (an object, an array) and keeps a binary one as its summary', async () => {
    const data = { padding: 'j'.repeat(40_000), items: ['a', 'b'] };
    const res = await request(app.getHttpServer())
      .post('/documents')
      .set('x-request-id', 'padded-json')
      .send({ note: 'short', data, content: 'bytes' })
      .expect(201);
    const [change] = ((await changesOf(db, 'padded-json')) as Stored).entities ?? [];
    expect(change).toMatchObject({ type: 'Document', id: (res.body as { id: number }).id, op: 'insert' });
    expect(change.fields.note).toEqual([null, 'short']);
    expect(change.fields.data).toEqual([null, cut(Buffer.byteLength(JSON.stringify(data)))]);
    expect(change.fields.content).toEqual([null, expect.stringMatching(/^\[Buffer 5 bytes, sha256 [0-9a-f]{16}\]$/)]);
    const array = Array.from({ length: 4000 }, (_, i) => `item ${i} ${'a'.repeat(5)}`);
    await request(app.getHttpServer())
      .post('/documents')
      .set('x-request-id', 'padded-array')
      .send({ note: 'list', data: array, content: '' })
      .expect(201);
    const [listed] = ((await changesOf(db, 'padded-array')) as Stored).entities ?? [];
    expect(Object.keys(listed.fields).sort()).toEqual(['content', 'data', 'id', 'note']);
    expect(listed.fields.data).toEqual([null, { _truncated: true, originalBytes: expect.any(Number) as number }]);
  });
});

describe('a padded value inside a change, with personal values kept apart', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(
      db,
      { mode: 'sync', privacy: { personalData: ['changes.entities[].fields.counterparty'] } },
      { controllers: [TransferController], entities: [Document] },
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('keeps the change, its personal property (the cut value too) kept apart by its path and read back', async () => {
    const create = async (counterparty: string) =>
      ((await request(app.getHttpServer()).post('/contracts').send({ title: 'Lease', counterparty }).expect(201)).body as { id: string })
        .id;
    const given = await create('Jane Roe');
    const taker = await create('Acme Ltd');
    const padded = `Acme Group ${'x'.repeat(40_000)}`;
    await request(app.getHttpServer())
      .patch(`/contracts/${taker}/take-over/${given}`)
      .set('x-request-id', 'private-take-over')
      .send({ counterparty: padded })
      .expect(200);
    const changes = (await changesOf(db, 'private-take-over')) as Stored;
    expect(changes.entitiesOmitted).toBeUndefined();
    // The personal property is taken out of the row into `personal`, by its path: which change and which property.
    const ids = changes.entities?.map((change) => change.id);
    expect(ids?.slice().sort()).toEqual([given, taker].sort());
    const stored = JSON.stringify(changes.entities);
    expect(stored).not.toContain('Jane Roe');
    expect(stored).not.toContain('Acme Ltd');
    const [{ personal }] = await db.query<{ personal: string }>(`SELECT personal FROM audit_log WHERE request_id = 'private-take-over'`);
    expect((JSON.parse(personal) as { values: [unknown[], string][] }).values.map(([path]) => path)).toEqual([
      ['changes', 'entities', 0, 'fields', 'counterparty'],
      ['changes', 'entities', 1, 'fields', 'counterparty'],
    ]);
    const { items } = await app.get(AuditQueryService).history('Contract', taker);
    const takenOver = items.find((item) => item.action === 'contract_taken_over');
    const revealed = (takenOver?.changes as Stored).entities?.find((change) => change.id === taker);
    expect(revealed?.fields.counterparty).toEqual(['Acme Ltd', cut(padded.length + 2)]);
  });
});
