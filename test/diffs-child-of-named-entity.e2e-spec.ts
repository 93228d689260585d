import { Body, Controller, type INestApplication, Param, Patch, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { ChildEntity, Column, DataSource, Entity, PrimaryGeneratedColumn, TableInheritance } from 'typeorm';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md, "Before/after diffs": an entity named in the `diffs` option is audited, and an
// entity that extends an audited one is audited under its rules. A `@ChildEntity()` (single-table
// inheritance) of an entity named in `diffs.entities`, by class or by name, writes into the
// audited table: its changes are listed under its own entity name, with the exclusions
// `diffs.exclude` gives its parent.

@Entity('named_sti_person')
@TableInheritance({ column: { type: 'varchar', name: 'kind' } })
class Person {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') name!: string;
  @Column('integer', { nullable: true }) salary!: number | null;
}

@ChildEntity()
class Employee extends Person {
  @Column('text', { nullable: true }) band!: string | null;
}

@Entity('named_sti_vehicle')
@TableInheritance({ column: { type: 'varchar', name: 'kind' } })
class Vehicle {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') plate!: string;
}

@ChildEntity()
class Truck extends Vehicle {
  @Column('integer', { nullable: true }) axles!: number | null;
}

@Controller()
class StaffController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('employees')
  async hire(@Body() body: { name: string; salary: number; band: string }): Promise<{ id: number }> {
    const repo = this.db.getRepository(Employee);
    return { id: (await repo.save(repo.create(body))).id };
  }

  @Patch('employees/:id')
  async regrade(@Param('id') id: string, @Body() body: { band: string; salary: number }): Promise<void> {
    const repo = this.db.getRepository(Employee);
    const found = await repo.findOneByOrFail({ id: Number(id) });
    found.band = body.band;
    found.salary = body.salary;
    await repo.save(found);
  }

  @Post('trucks')
  async truck(@Body() body: { plate: string; axles: number }): Promise<{ id: number }> {
    const repo = this.db.getRepository(Truck);
    return { id: (await repo.save(repo.create(body))).id };
  }
}

describe('a child entity of an entity named in diffs.entities', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(
      db,
      { mode: 'sync', diffs: { entities: [Person, 'Vehicle'], exclude: { Person: ['salary'] } } },
      { entities: [Person, Employee, Vehicle, Truck], controllers: [StaffController] },
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('lists its writes into the audited table, without what the option excludes from its parent', async () => {
    const server = app.getHttpServer();
    const { id } = (
      await request(server)
        .post('/employees')
        .set('x-request-id', 'sti-hire')
        .send({ name: 'Jane Roe', salary: 5000, band: 'B2' })
        .expect(201)
    ).body as { id: number };
    await request(server).patch(`/employees/${id}`).set('x-request-id', 'sti-regrade').send({ band: 'B3', salary: 6000 }).expect(200);
    expect(await db.query('SELECT kind, name, salary, band FROM named_sti_person')).toEqual([
      { kind: 'Employee', name: 'Jane Roe', salary: 6000, band: 'B3' },
    ]);

    expect({ hire: (await changesOf(db, 'sti-hire')).entities, regrade: (await changesOf(db, 'sti-regrade')).entities }).toEqual({
      hire: [
        {
          type: 'Employee',
          id,
          op: 'insert',
          fields: { id: [null, id], name: [null, 'Jane Roe'], band: [null, 'B2'] },
        },
      ],
      regrade: [{ type: 'Employee', id, op: 'update', fields: { band: ['B2', 'B3'] } }],
    });
  });

  it('lists those of a child of an entity named by its name', async () => {
    const { id } = (
      await request(app.getHttpServer()).post('/trucks').set('x-request-id', 'sti-truck').send({ plate: 'AB-123', axles: 3 }).expect(201)
    ).body as { id: number };
    expect((await changesOf(db, 'sti-truck')).entities).toEqual([
      { type: 'Truck', id, op: 'insert', fields: { id: [null, id], plate: [null, 'AB-123'], axles: [null, 3] } },
    ]);
  });
});
