import { partitionsChecked } from './app';
import {
  Body,
  ConflictException,
  Controller,
  Delete,
  HttpCode,
  type INestApplication,
  Module,
  Param,
  Patch,
  Post,
  type Type,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import { Column, DataSource, DeleteDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { AUDIT_MIGRATIONS, Audited, AuditedEntity, AuditLog, AuditModule, type AuditModuleOptions, AuditService } from '../../src/audit';
import { type TestPostgres } from './postgres';

/** An audited entity with an excluded column, a secret one and soft deletes. */
@AuditedEntity({ type: 'Contract', exclude: ['updatedAt'] })
@Entity('contract')
export class Contract {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('text') title!: string;
  @Column('text') counterparty!: string;
  @Column('text', { nullable: true }) apiToken!: string | null;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt!: Date;
  @DeleteDateColumn({ type: 'timestamptz' }) deletedAt!: Date | null;
}

/** Audited through the module option only. */
@Entity('tag')
export class Tag {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') label!: string;
}

/** Not audited: its writes must leave no trace in `changes`. */
@Entity('note')
export class Note {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') text!: string;
}

type Fields = Partial<Pick<Contract, 'title' | 'counterparty' | 'apiToken'>>;

@Controller()
class ContractsController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post('contracts')
  @Audited('contract_created', { entityType: 'Contract', entityId: { result: 'id' } })
  create(@Body() body: Fields): Promise<Contract> {
    return this.db.getRepository(Contract).save(this.db.getRepository(Contract).create(body));
  }

  @Patch('contracts/:id')
  async update(@Param('id') id: string, @Body() body: Fields): Promise<Contract> {
    const repo = this.db.getRepository(Contract);
    return repo.save(repo.merge(await repo.findOneByOrFail({ id }), body));
  }

  @Delete('contracts/:id')
  @HttpCode(204)
  async remove(@Param('id') id: string): Promise<void> {
    const repo = this.db.getRepository(Contract);
    await repo.remove(await repo.findOneByOrFail({ id }));
  }

  @Post('contracts/:id/archive')
  async archive(@Param('id') id: string): Promise<void> {
    const repo = this.db.getRepository(Contract);
    await repo.softRemove(await repo.findOneByOrFail({ id }));
  }

  @Post('contracts/:id/restore')
  async restore(@Param('id') id: string): Promise<void> {
    const repo = this.db.getRepository(Contract);
    await repo.recover(await repo.findOneOrFail({ where: { id }, withDeleted: true }));
  }

  @Post('contracts/rename-counterparty')
  async rename(@Body() body: { from: string; to: string }): Promise<void> {
    await this.db.getRepository(Contract).update({ counterparty: body.from }, { counterparty: body.to });
  }

  @Post('contracts/inserted')
  async insert(@Body() body: Fields): Promise<{ id: string }> {
    const { identifiers } = await this.db.createEntityManager().insert(Contract, body);
    return { id: identifiers[0].id as string };
  }

  @Post('contracts/purge')
  async purge(@Body() body: { counterparty: string }): Promise<void> {
    await this.db.getRepository(Contract).delete({ counterparty: body.counterparty });
  }

  @Post('contracts/refused')
  refused(@Body() body: Fields): Promise<void> {
    return this.db.transaction(async (manager) => {
      await manager.save(manager.create(Contract, body));
      throw new ConflictException('refused after saving');
    });
  }

  @Post('contracts/savepoint')
  savepoint(@Body() body: { kept: string; dropped: string }): Promise<void> {
    return this.db.transaction(async (manager) => {
      await manager.save(manager.create(Contract, { title: body.kept, counterparty: 'Outer' }));
      await manager
        .transaction(async (inner) => {
          await inner.save(inner.create(Contract, { title: body.dropped, counterparty: 'Inner' }));
          throw new Error('inner work rolled back to its savepoint');
        })
        .catch(() => undefined);
    });
  }

  @Post('contracts/atomic')
  atomic(@Body() body: Fields): Promise<Contract> {
    return this.db.transaction(async (manager) => {
      const contract = await manager.save(manager.create(Contract, body));
      await this.audit.record({ action: 'contract_created_atomically', entityType: 'Contract', entityId: contract.id }, { manager });
      return contract;
    });
  }

  @Post('tags')
  tag(@Body() body: { label: string }): Promise<Tag> {
    return this.db.getRepository(Tag).save({ label: body.label });
  }

  @Post('notes')
  note(@Body() body: { text: string }): Promise<Note> {
    return this.db.getRepository(Note).save({ text: body.text });
  }
}

/** Name of the DataSource that holds `audit_log` (the entities live in the default one). */
export const AUDIT_SOURCE = 'audit';

/** Entities and controllers a suite adds to the diffs app. */
export interface DiffsAppExtras {
  entities?: Type[];
  controllers?: Type[];
  /** Where the app's own DataSource connects (a proxy in front of `db`); `db` itself by default. */
  appUrl?: string;
}

/**
 * A small app on `db`: the entities in the default DataSource, `audit_log` (same database) in a
 * DataSource of its own, as the example app has it.
 */
export async function startDiffsApp(
  db: TestPostgres,
  options: AuditModuleOptions = {},
  extras: DiffsAppExtras = {},
): Promise<INestApplication<Server>> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url: extras.appUrl ?? db.url(),
        entities: [Contract, Tag, Note, ...(extras.entities ?? [])],
        synchronize: true,
      }),
      TypeOrmModule.forRoot({
        name: AUDIT_SOURCE,
        type: 'postgres',
        url: db.url(),
        entities: [AuditLog],
        migrations: [...AUDIT_MIGRATIONS],
        migrationsTableName: 'audit_migrations',
        migrationsRun: true,
      }),
      // forRootAsync: forRoot() would pass `dataSource` on as an option, which is refused as unknown.
      AuditModule.forRootAsync({
        dataSource: AUDIT_SOURCE,
        useFactory: () => ({ ...options, diffs: { entities: [Tag], ...options.diffs } }),
      }),
    ],
    controllers: [ContractsController, ...(extras.controllers ?? [])],
  })
  class DiffsAppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [DiffsAppModule] }).compile();
  const app = moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
  await app.listen(0, '127.0.0.1');
  await partitionsChecked(app);
  return app;
}

/** The `changes` of the one row a request left, waiting for it (async mode writes after the response). */
export async function changesOf(db: TestPostgres, requestId: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const rows = await db.query<{ changes: Record<string, unknown> }>('SELECT changes FROM audit_log WHERE request_id = $1', [requestId]);
    if (rows.length > 1) throw new Error(`${rows.length} rows for ${requestId}`);
    if (rows.length === 1) return rows[0].changes;
    if (Date.now() > deadline) throw new Error(`no row for ${requestId}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
