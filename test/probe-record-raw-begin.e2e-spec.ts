import { Body, Controller, type INestApplication, Module, Post } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { TestPostgres } from './support/postgres';

/** A handler that opens its transaction with plain SQL on a query runner, records in it, then rolls it back. */
@Controller('batches')
class BatchesController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async run(@Body() body: { tag: string }): Promise<{ ok: true }> {
    const runner = this.db.createQueryRunner();
    await runner.connect();
    try {
      await runner.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await this.audit.record({ action: 'batch_recorded', entityType: 'Batch', requestId: body.tag }, { manager: runner.manager });
      // The batch is abandoned: its work, the audit row with it, is rolled back.
      await runner.query('ROLLBACK');
    } finally {
      await runner.release();
    }
    return { ok: true };
  }
}

// Probe (attacker A3). docs/GUIDE.md: "A `record()` row that does not commit stands for nothing:
// when its transaction or savepoint rolls back, or PostgreSQL answers its COMMIT with ROLLBACK (…),
// the request gets its own row"; "a row discarded by something TypeORM does not report (a savepoint
// rolled back with plain SQL) stands for nothing either". A transaction TypeORM does not report
// (opened with plain SQL on a query runner) is taken for no transaction: the row counts as committed
// the moment it is inserted, and its rollback leaves the request with no row at all.
describe('probe: record() inside a transaction opened and rolled back with SQL', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('batches');
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url('batches'),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
        }),
        AuditModule.forRoot({ mode: 'sync' }),
      ],
      controllers: [BatchesController],
    })
    class BatchesModule {}
    const moduleRef = await Test.createTestingModule({ imports: [BatchesModule] }).compile();
    app = moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
    await app.listen(0, '127.0.0.1');
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('the request still gets exactly one row', async () => {
    await request(app.getHttpServer()).post('/batches').set('x-request-id', 'raw-begin-1').send({ tag: 'raw-begin-1' }).expect(201);
    const rows = await db.query<{ action: string }>(`SELECT action FROM audit_log WHERE request_id = 'raw-begin-1'`, [], 'batches');
    expect(rows).toEqual([{ action: 'batches.run' }]);
  }, 30_000);
});
