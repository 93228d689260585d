import { Controller, Delete, HttpCode, type INestApplication, Param, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { ChildEntity, Column, DataSource, Entity, ManyToOne, PrimaryGeneratedColumn, TableInheritance } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

// docs/GUIDE.md, "Before/after diffs": rows PostgreSQL itself writes by a foreign key's action are
// counted, not listed, and keys are taken by table: the classes of a single-table hierarchy share
// theirs. An audited `@ChildEntity` (a company) of a party whose many-to-one to a region
// (ON DELETE CASCADE) is declared on the parent class, which is not audited: remove() of the
// region deletes the audited company, and counts 1 in `changes.entitiesOmitted`.

@Entity('cascade_child_region')
class Region {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') name!: string;
}

@Entity('cascade_child_party')
@TableInheritance({ column: { type: 'varchar', name: 'kind' } })
class Party {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') name!: string;
  @ManyToOne(() => Region, { onDelete: 'CASCADE', nullable: false }) region!: Region;
}

@AuditedEntity({ type: 'Company' })
@ChildEntity('company')
class Company extends Party {
  @Column('text', { nullable: true }) vat!: string | null;
}

@Controller()
class RegionController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('regions')
  async create(): Promise<{ id: number }> {
    const region = await this.db.getRepository(Region).save({ name: 'North' });
    await this.db.getRepository(Company).save({ name: 'Initech', vat: 'X', region });
    return { id: region.id };
  }

  @Delete('regions/:id')
  @HttpCode(204)
  async remove(@Param('id') id: string): Promise<void> {
    const repo = this.db.getRepository(Region);
    await repo.remove(await repo.findOneByOrFail({ id: Number(id) }));
  }
}

describe('an audited child entity deleted by a key of its table', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { entities: [Region, Party, Company], controllers: [RegionController] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('counts the audited company deleted with its region', async () => {
    const created = await request(app.getHttpServer()).post('/regions').expect(201);
    const { id } = created.body as { id: number };
    await request(app.getHttpServer()).delete(`/regions/${id}`).set('x-request-id', 'child-region').expect(204);
    expect(await db.query('SELECT count(*)::int AS n FROM cascade_child_party')).toEqual([{ n: 0 }]);
    const changes = ((await changesOf(db, 'child-region')) as Record<string, unknown> | null) ?? {};
    expect({ listed: changes.entities ?? [], omitted: changes.entitiesOmitted }).toEqual({ listed: [], omitted: 1 });
  });
});
