import { Body, Controller, type INestApplication, Module, Post } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../../src/audit';
import { TestPostgres } from '../support/postgres';

/** A handler that records its row in its transaction, which commits. */
@Controller('orders')
class OrdersController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async order(@Body() body: { tag: string }): Promise<{ ok: true }> {
    await this.db.transaction(async (manager) => {
      await this.audit.record({ action: 'order_recorded', entityType: 'Order', requestId: body.tag }, { manager });
    });
    return { ok: true };
  }
}

// Attack: README promises of record() "once that transaction has committed, the interceptor writes
// no second row for that request", and DESIGN.md a trail "livable for years". Before the outer
// COMMIT the module looks its record() rows up with `WHERE id::text = ANY(...)`: the cast keeps
// PostgreSQL off the key (id, occurred_at) of every partition, so the look-up reads the whole trail,
// every month of it, under `writeTimeoutMs`. On a trail large enough for that scan to outlast
// the bound, the look-up fails, and every request that used record() gets a second row. Here
// 600 000 rows (the scan alone took 230 ms on the busy test machine) and a bound of 100 ms; at the default 2000 ms the same happens at a few million.
const SEEDED_ROWS = 600_000;
const WRITE_TIMEOUT_MS = 100;

describe('record() on a large trail', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('orders');
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url('orders'),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
        }),
        AuditModule.forRoot({ mode: 'sync', writeTimeoutMs: WRITE_TIMEOUT_MS }),
      ],
      controllers: [OrdersController],
    })
    class OrdersModule {}
    const moduleRef = await Test.createTestingModule({ imports: [OrdersModule] }).compile();
    app = moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
    await app.listen(0, '127.0.0.1');
    // The trail of earlier months (a few hundred thousand rows: small for a trail kept for years).
    // Seeded fast: the tx trigger off for the seed only (these rows play no part in sealing).
    await db.query('ALTER TABLE audit_log DISABLE TRIGGER USER', [], 'orders');
    await db.query(
      `INSERT INTO audit_log (id, occurred_at, action, outcome)
       SELECT gen_random_uuid(), now() - make_interval(mins => g), 'earlier', 'success' FROM generate_series(1, ${SEEDED_ROWS}) AS g`,
      [],
      'orders',
    );
    await db.query('ALTER TABLE audit_log ENABLE TRIGGER USER', [], 'orders');
    await db.query('VACUUM ANALYZE audit_log', [], 'orders');
  }, 240_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('the request gets exactly one row: its record() row', async () => {
    await request(app.getHttpServer()).post('/orders').set('x-request-id', 'big-1').send({ tag: 'big-1' }).expect(201);
    const rows = await db.query<{ action: string }>(
      `SELECT action FROM audit_log WHERE request_id = 'big-1' ORDER BY action`,
      [],
      'orders',
    );
    expect(rows).toEqual([{ action: 'order_recorded' }]);
  }, 60_000);
});
