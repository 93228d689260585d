import { Body, Controller, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, JoinColumn, ManyToOne, OneToOne, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md, "Before/after diffs": excluded properties never appear. A many-to-one relation
// whose foreign key is also a column of its own (`@Column() reporterId` beside
// `@ManyToOne() @JoinColumn({ name: 'reporterId' }) reporter`, to read the id without loading the
// relation) is one value in the row under two properties: excluding either leaves out both, for
// `save()` of a new row, of a loaded one, and an `update()` by criteria. When that column is the
// primary key (a one-to-one sharing its key), it is `[EXCLUDED]` in the change's id.

@Entity('excluded_relation_person')
class Person {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') name!: string;
}

/** Excludes the relation; its join column is a property of its own. */
@AuditedEntity({ type: 'Case', exclude: ['reporter'] })
@Entity('excluded_relation_case')
class Case {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') title!: string;
  @Column('integer', { nullable: true }) reporterId!: number | null;
  @ManyToOne(() => Person, { nullable: true })
  @JoinColumn({ name: 'reporterId' })
  reporter!: Person | null;
}

/** Excludes the join column's property, named apart from its column: the relation holding it is left out too. */
@AuditedEntity({ type: 'Tip', exclude: ['sourceId'] })
@Entity('excluded_relation_tip')
class Tip {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') title!: string;
  @Column('integer', { name: 'source_id', nullable: true }) sourceId!: number | null;
  @ManyToOne(() => Person, { nullable: true })
  @JoinColumn({ name: 'source_id' })
  source!: Person | null;
}

/** Keyed by its holder's key: the excluded relation's column is the primary key. */
@AuditedEntity({ type: 'Badge', exclude: ['holder'] })
@Entity('excluded_relation_badge')
class Badge {
  @PrimaryColumn('integer') holderId!: number;
  @Column('text') label!: string;
  @OneToOne(() => Person)
  @JoinColumn({ name: 'holderId' })
  holder!: Person;
}

@Controller()
class CasesController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('people')
  async person(@Body() body: { name: string }): Promise<{ id: number }> {
    return { id: (await this.db.getRepository(Person).save({ name: body.name })).id };
  }

  @Post('cases')
  async create(@Body() body: { title: string; reporterId: number }): Promise<{ id: number }> {
    const repo = this.db.getRepository(Case);
    return { id: (await repo.save(repo.create({ title: body.title, reporterId: body.reporterId }))).id };
  }

  @Patch('cases/:id')
  async update(@Param('id') id: string, @Body() body: { title: string; reporterId: number }): Promise<void> {
    const repo = this.db.getRepository(Case);
    const found = await repo.findOneByOrFail({ id: Number(id) });
    found.title = body.title;
    found.reporterId = body.reporterId;
    await repo.save(found);
  }

  @Patch('cases/:id/by-criteria')
  async byCriteria(@Param('id') id: string, @Body() body: { reporterId: number }): Promise<void> {
    await this.db.getRepository(Case).update({ id: Number(id) }, { reporterId: body.reporterId });
  }

  @Post('badges')
  async badge(@Body() body: { holderId: number; label: string }): Promise<void> {
    await this.db.getRepository(Badge).save({ holderId: body.holderId, label: body.label });
  }

  @Post('tips')
  async tip(@Body() body: { title: string; sourceId: number }): Promise<{ id: number }> {
    const repo = this.db.getRepository(Tip);
    return { id: (await repo.save(repo.create({ title: body.title, source: { id: body.sourceId } }))).id };
  }

  @Patch('tips/:id')
  async retip(@Param('id') id: string, @Body() body: { sourceId: number }): Promise<void> {
    const repo = this.db.getRepository(Tip);
    const found = await repo.findOneOrFail({ where: { id: Number(id) }, relations: { source: true } });
    found.title = `${found.title}!`;
    found.source = { id: body.sourceId } as Person;
    await repo.save(found);
  }
}

describe('an excluded relation and the column that holds it', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let people: number[];

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { entities: [Person, Case, Tip, Badge], controllers: [CasesController] });
    people = [];
    for (const name of ['Whistle Blower', 'Second Source']) {
      people.push(((await request(app.getHttpServer()).post('/people').send({ name }).expect(201)).body as { id: number }).id);
    }
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('never writes who the reporter is, on insert, on reassignment or by criteria', async () => {
    const server = app.getHttpServer();
    const [first, second] = people;
    const { id } = (
      await request(server).post('/cases').set('x-request-id', 'case-opened').send({ title: 'Fraud', reporterId: first }).expect(201)
    ).body as { id: number };
    await request(server)
      .patch(`/cases/${id}`)
      .set('x-request-id', 'case-reassigned')
      .send({ title: 'Fraud (2)', reporterId: second })
      .expect(200);
    await request(server).patch(`/cases/${id}/by-criteria`).set('x-request-id', 'case-criteria').send({ reporterId: first }).expect(200);
    expect(await db.query('SELECT "reporterId" FROM excluded_relation_case WHERE id = $1', [id])).toEqual([{ reporterId: first }]);

    expect({
      opened: (await changesOf(db, 'case-opened')).entities,
      reassigned: (await changesOf(db, 'case-reassigned')).entities,
      criteria: (await changesOf(db, 'case-criteria')).entities,
    }).toEqual({
      opened: [{ type: 'Case', id, op: 'insert', fields: { id: [null, id], title: [null, 'Fraud'] } }],
      reassigned: [{ type: 'Case', id, op: 'update', fields: { title: ['Fraud', 'Fraud (2)'] } }],
      criteria: undefined,
    });
  });

  it('leaves out the relation whose join column is excluded by its property', async () => {
    const server = app.getHttpServer();
    const [first, second] = people;
    const { id } = (
      await request(server).post('/tips').set('x-request-id', 'tip-given').send({ title: 'Lead', sourceId: first }).expect(201)
    ).body as { id: number };
    await request(server).patch(`/tips/${id}`).set('x-request-id', 'tip-moved').send({ sourceId: second }).expect(200);
    expect(await db.query('SELECT source_id FROM excluded_relation_tip WHERE id = $1', [id])).toEqual([{ source_id: second }]);

    expect({ given: (await changesOf(db, 'tip-given')).entities, moved: (await changesOf(db, 'tip-moved')).entities }).toEqual({
      given: [{ type: 'Tip', id, op: 'insert', fields: { id: [null, id], title: [null, 'Lead'] } }],
      moved: [{ type: 'Tip', id, op: 'update', fields: { title: ['Lead', 'Lead!'] } }],
    });
  });

  it("writes the excluded relation's key column as [EXCLUDED] in the id when it is the primary key", async () => {
    const [first] = people;
    await request(app.getHttpServer())
      .post('/badges')
      .set('x-request-id', 'badge-issued')
      .send({ holderId: first, label: 'Visitor' })
      .expect(201);
    expect(await db.query('SELECT "holderId", label FROM excluded_relation_badge')).toEqual([{ holderId: first, label: 'Visitor' }]);
    expect((await changesOf(db, 'badge-issued')).entities).toEqual([
      { type: 'Badge', id: '[EXCLUDED]', op: 'insert', fields: { label: [null, 'Visitor'] } },
    ]);
  });
});
