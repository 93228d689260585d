// A property written with the value it had, in another spelling than TypeORM loads it, is no
// change (docs/GUIDE.md, "Before/after diffs"): each case reads the row before and after to show
// the column held, and the row lists only the label. TypeORM sends the UPDATE (it compares the
// values strictly); the diff compares them as the column stores them: a relation to a `bigint`
// key set by a numeric id, a `uuid` in capitals, a `time` without its seconds, a `timestamptz(0)`
// with milliseconds it rounds away, a `jsonb` value holding a `Date` where its ISO text was
// loaded, an `integer` and a `boolean` set as text. A spelling the column stores as another value
// (a property typed `boolean` without a column type set to 'true', which TypeORM sends as false;
// milliseconds that round to the next second) is listed.
import { Body, Controller, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

@Entity('alike_maker')
class Maker {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id!: string;
  @Column('text') name!: string;
}

@AuditedEntity({ type: 'Gadget' })
@Entity('alike_gadget')
class Gadget {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') label!: string;
  @Column('uuid') serial!: string;
  @Column('integer') count!: number | string;
  @Column('boolean') active!: boolean | string;
  @Column('time') opensAt!: string;
  @Column({ type: 'timestamptz', precision: 0 }) seenAt!: Date | string;
  @Column('jsonb', { nullable: true }) meta!: Record<string, unknown> | null;
  @ManyToOne(() => Maker, { nullable: true }) maker!: Maker | { id: string | number } | null;
  // No column type: TypeORM sends 1 for `true` only, 0 for anything else.
  @Column({ default: true }) flagged!: boolean;
}

const SERIAL = '0193a1c2-7b3e-7c4d-8e5f-0a1b2c3d4e5f';
const BASE = {
  label: 'Before',
  serial: SERIAL,
  count: 5,
  active: true,
  opensAt: '10:00:00',
  seenAt: '2026-01-01T10:00:00.000Z',
};

@Controller()
class GadgetsController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('makers')
  async maker(@Body() body: { name: string }): Promise<{ id: string }> {
    return { id: (await this.db.getRepository(Maker).save({ name: body.name })).id };
  }

  @Post('gadgets')
  async create(@Body() body: Record<string, unknown>): Promise<{ id: number }> {
    const repo = this.db.getRepository(Gadget);
    return { id: (await repo.save(repo.create(body as Partial<Gadget>))).id };
  }

  @Patch('gadgets/:id')
  async update(@Param('id') id: string, @Body() body: Record<string, unknown>): Promise<void> {
    const repo = this.db.getRepository(Gadget);
    const gadget = await repo.findOneByOrFail({ id: Number(id) });
    Object.assign(gadget, body);
    await repo.save(gadget);
  }

  /** The app keeps a date in the JSON column as a Date, as its own type says (JSON stores its ISO text). */
  @Patch('gadgets/:id/checked')
  async checked(@Param('id') id: string, @Body() body: { label: string; checkedAt: string }): Promise<void> {
    const repo = this.db.getRepository(Gadget);
    const gadget = await repo.findOneByOrFail({ id: Number(id) });
    gadget.label = body.label;
    gadget.meta = { checkedAt: new Date(body.checkedAt) };
    await repo.save(gadget);
  }
}

describe('a value written in another spelling than TypeORM loads it', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { entities: [Maker, Gadget], controllers: [GadgetsController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const storedRow = async (id: number) =>
    (
      await db.query<Record<string, string>>(
        `SELECT serial::text, count::text, active::text, "opensAt"::text AS opens, "seenAt"::text AS seen, "makerId"::text AS maker,
                flagged::text
         FROM alike_gadget WHERE id = $1`,
        [id],
      )
    )[0];

  /** Creates a gadget, writes `written` with a new label, and returns what the row lists and whether the other columns held. */
  const rewrite = async (requestId: string, written: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const { id } = (
      await request(app.getHttpServer())
        .post('/gadgets')
        .send({ ...BASE, ...extra })
        .expect(201)
    ).body as { id: number };
    const before = await storedRow(id);
    await request(app.getHttpServer())
      .patch(`/gadgets/${id}`)
      .set('x-request-id', requestId)
      .send({ label: 'After', ...written })
      .expect(200);
    return { id, held: await storedRow(id), before, entities: (await changesOf(db, requestId)).entities };
  };

  const onlyLabel = (id: number) => [{ type: 'Gadget', id, op: 'update', fields: { label: ['Before', 'After'] } }];

  it('a relation to a bigint key set by a numeric id', async () => {
    const maker = (await request(app.getHttpServer()).post('/makers').send({ name: 'Acme' }).expect(201)).body as { id: string };
    const seen = await rewrite('alike-bigint-relation', { maker: { id: Number(maker.id) } }, { maker: { id: maker.id } });
    expect(seen.held).toEqual(seen.before);
    expect(seen.entities).toEqual(onlyLabel(seen.id));
  });

  it('a uuid column set in capitals', async () => {
    const seen = await rewrite('alike-uuid-capitals', { serial: SERIAL.toUpperCase() });
    expect(seen.held).toEqual(seen.before);
    expect(seen.entities).toEqual(onlyLabel(seen.id));
  });

  it('a time column set without its seconds', async () => {
    const seen = await rewrite('alike-time', { opensAt: '10:00' });
    expect(seen.held).toEqual(seen.before);
    expect(seen.entities).toEqual(onlyLabel(seen.id));
  });

  it('a timestamptz(0) column set with milliseconds it rounds away', async () => {
    const seen = await rewrite('alike-timestamp-precision', { seenAt: '2026-01-01T10:00:00.300Z' });
    expect(seen.held).toEqual(seen.before);
    expect(seen.entities).toEqual(onlyLabel(seen.id));
  });

  it('a jsonb value holding a Date where its ISO text was loaded', async () => {
    const checkedAt = '2026-01-02T03:04:05.678Z';
    const { id } = (
      await request(app.getHttpServer())
        .post('/gadgets')
        .send({ ...BASE, meta: { checkedAt } })
        .expect(201)
    ).body as { id: number };
    const before = await db.query('SELECT meta::text FROM alike_gadget WHERE id = $1', [id]);
    await request(app.getHttpServer())
      .patch(`/gadgets/${id}/checked`)
      .set('x-request-id', 'alike-jsonb-date')
      .send({ label: 'After', checkedAt })
      .expect(200);
    expect(await db.query('SELECT meta::text FROM alike_gadget WHERE id = $1', [id])).toEqual(before);
    expect((await changesOf(db, 'alike-jsonb-date')).entities).toEqual(onlyLabel(id));
  });

  it('an integer set as text and a boolean as text', async () => {
    const seen = await rewrite('alike-integer-boolean', { count: '5', active: 'true' });
    expect(seen.held).toEqual(seen.before);
    expect(seen.entities).toEqual(onlyLabel(seen.id));
  });

  it('lists a spelling the column stores as another value', async () => {
    const seen = await rewrite('alike-stored-otherwise', { flagged: 'true', seenAt: '2026-01-01T10:00:00.600Z', count: '6' });
    // 'true' sent as 0, the milliseconds rounded to the next second, another number.
    expect(seen.held).toEqual({ ...seen.before, flagged: 'false', seen: '2026-01-01 10:00:01+00', count: '6' });
    expect(seen.entities).toEqual([
      {
        type: 'Gadget',
        id: seen.id,
        op: 'update',
        fields: {
          label: ['Before', 'After'],
          count: [5, '6'],
          seenAt: ['2026-01-01T10:00:00.000Z', '2026-01-01T10:00:00.600Z'],
          flagged: [true, 'true'],
        },
      },
    ]);
  });
});
