import { Body, ConflictException, Controller, type INestApplication, Module, Post } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { Audited, AuditLog, AuditModule, AuditService, CreateAuditLog1732700000000 } from '../src/audit';
import { TestPostgres } from './support/postgres';

@Entity('widget')
class Widget {
  @PrimaryColumn('uuid')
  id!: string;

  @Column('text')
  name!: string;
}

@Controller('widgets')
class WidgetsController {
  constructor(
    private readonly dataSource: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  @Audited('widget_created', { entityType: 'Widget', entityId: { result: 'id' } })
  create(@Body() body: { name: string; refuseAfterAudit?: boolean }): Promise<Widget> {
    return this.dataSource.transaction(async (manager) => {
      const widget = await manager.save(Widget, { id: randomUUID(), name: body.name });
      await this.audit.record(
        { action: 'widget_created', entityType: 'Widget', entityId: widget.id, changes: { name: widget.name } },
        { manager },
      );
      if (body.refuseAfterAudit) throw new ConflictException('refused after the audit row was written');
      return widget;
    });
  }
}

// The transactional-outbox guarantee: the mutation and its audit row commit or roll back together,
// and the interceptor adds no second row. Sync mode makes the interceptor's own write (if any)
// finish before the response, so "no second row" is checked without waiting.
describe('AuditService.record() inside the caller transaction', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  const rows = (requestId: string) =>
    db.query<{ outcome: string; entity_id: string | null; changes: unknown; metadata: { statusCode: number } }>(
      'SELECT outcome, entity_id, changes, metadata FROM audit_log WHERE request_id = $1',
      [requestId],
    );

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.query('CREATE TABLE widget (id uuid PRIMARY KEY, name text NOT NULL)');
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(),
          entities: [Widget, AuditLog],
          migrations: [CreateAuditLog1732700000000],
          migrationsRun: true,
        }),
        AuditModule.forRoot({ mode: 'sync' }),
      ],
      controllers: [WidgetsController],
    })
    class WidgetsAppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [WidgetsAppModule] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('commits the widget and its one audit row together', async () => {
    const response = await request(app.getHttpServer())
      .post('/widgets')
      .set('x-request-id', 'req-commit')
      .send({ name: 'gear' })
      .expect(201);
    const id = (response.body as Widget).id;
    expect(await rows('req-commit')).toEqual([]);
    const written = await db.query<{ entity_id: string; changes: unknown }>(
      'SELECT entity_id, changes FROM audit_log WHERE entity_id = $1',
      [id],
    );
    expect(written).toEqual([{ entity_id: id, changes: { name: 'gear' } }]);
  });

  it('rolls the audit row back with the widget, and the interceptor records the failed request once', async () => {
    await request(app.getHttpServer())
      .post('/widgets')
      .set('x-request-id', 'req-rollback')
      .send({ name: 'sprocket', refuseAfterAudit: true })
      .expect(409);
    expect(await db.query("SELECT 1 FROM widget WHERE name = 'sprocket'")).toEqual([]);
    expect(await db.query(`SELECT 1 FROM audit_log WHERE changes->>'name' = 'sprocket'`)).toEqual([]);
    expect(await rows('req-rollback')).toEqual([
      {
        outcome: 'failure',
        entity_id: null,
        changes: { body: { name: 'sprocket', refuseAfterAudit: true } },
        metadata: expect.objectContaining({ statusCode: 409 }),
      },
    ]);
  });
});
