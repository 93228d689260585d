import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md, "Before/after diffs": excluded properties never appear. An entity that extends
// an audited one (TypeORM's concrete table inheritance, each class with its own table) and has an
// `@AuditedEntity()` of its own, for its own type, keeps the exclusions of the entity it extends,
// those of its decorator and those `diffs.exclude` gives under its name: a subclass can add
// exclusions, never drop its parent's.

@AuditedEntity({ type: 'Person', exclude: ['salary'] })
@Entity('inherited_person')
class Person {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') name!: string;
  @Column('integer', { nullable: true }) salary!: number | null;
  @Column('text', { nullable: true }) nickname!: string | null;
}

@AuditedEntity({ type: 'Employee' })
@Entity('inherited_employee')
class Employee extends Person {
  @Column('text') team!: string;
}

@AuditedEntity({ type: 'Contractor', exclude: ['rate'] })
@Entity('inherited_contractor')
class Contractor extends Person {
  @Column('text') agency!: string;
  @Column('integer') rate!: number;
}

@Controller()
class PeopleController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('people')
  async person(@Body() body: { name: string; salary: number; nickname: string }): Promise<{ id: number }> {
    return { id: (await this.db.getRepository(Person).save(this.db.getRepository(Person).create(body))).id };
  }

  @Post('contractors')
  async contractor(
    @Body() body: { name: string; salary: number; nickname: string; agency: string; rate: number },
  ): Promise<{ id: number }> {
    return { id: (await this.db.getRepository(Contractor).save(this.db.getRepository(Contractor).create(body))).id };
  }

  @Post('employees')
  async employee(@Body() body: { name: string; salary: number; nickname: string; team: string }): Promise<{ id: number }> {
    return { id: (await this.db.getRepository(Employee).save(this.db.getRepository(Employee).create(body))).id };
  }
}

describe('an exclusion declared on an audited parent entity', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(
      db,
      { mode: 'sync', diffs: { exclude: { Person: ['nickname'] } } },
      { entities: [Person, Employee, Contractor], controllers: [PeopleController] },
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it("keeps the parent's excluded salary and nickname out of the parent's diffs", async () => {
    const answer = await request(app.getHttpServer())
      .post('/people')
      .set('x-request-id', 'person-created')
      .send({ name: 'Ann', salary: 91000, nickname: 'Annie' });
    expect(answer.status).toBe(201);
    const { id } = answer.body as { id: number };
    expect((await changesOf(db, 'person-created')).entities).toEqual([
      { type: 'Person', id, op: 'insert', fields: { id: [null, id], name: [null, 'Ann'] } },
    ]);
  });

  it("keeps the inherited salary and nickname out of the subclass's diffs too", async () => {
    const answer = await request(app.getHttpServer())
      .post('/employees')
      .set('x-request-id', 'employee-created')
      .send({ name: 'Bob', salary: 98000, nickname: 'Bobby', team: 'Payroll' });
    expect(answer.status).toBe(201);
    const { id } = answer.body as { id: number };
    expect((await changesOf(db, 'employee-created')).entities).toEqual([
      { type: 'Employee', id, op: 'insert', fields: { id: [null, id], name: [null, 'Bob'], team: [null, 'Payroll'] } },
    ]);
  });

  it('keeps the inherited exclusions beside those a subclass adds', async () => {
    const answer = await request(app.getHttpServer())
      .post('/contractors')
      .set('x-request-id', 'contractor-created')
      .send({ name: 'Cy', salary: 70000, nickname: 'Cyclone', agency: 'Temps Ltd', rate: 120 });
    expect(answer.status).toBe(201);
    const { id } = answer.body as { id: number };
    expect((await changesOf(db, 'contractor-created')).entities).toEqual([
      { type: 'Contractor', id, op: 'insert', fields: { id: [null, id], name: [null, 'Cy'], agency: [null, 'Temps Ltd'] } },
    ]);
  });
});
