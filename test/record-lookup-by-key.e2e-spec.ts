import { Body, Controller, type INestApplication, Module, Post } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { partitionsChecked } from './support/app';
import { TestPostgres } from './support/postgres';

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

// record()'s row is looked up in its transaction before the COMMIT, bounded by writeTimeoutMs, to
// know that the request needs no row of its own. That look-up must go to the row's own month by
// its key (id, occurred_at): a look-up that reads other months waits on whatever holds them (an
// operator's lock on an old month here; on a trail of millions of rows, the scan itself) and, timed
// out, makes the request write a second row.
describe("record()'s look-up before COMMIT", () => {
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
        AuditModule.forRoot({ mode: 'sync', writeTimeoutMs: 500 }),
      ],
      controllers: [OrdersController],
    })
    class OrdersModule {}
    const moduleRef = await Test.createTestingModule({ imports: [OrdersModule] }).compile();
    app = moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
    await app.listen(0, '127.0.0.1');
    await partitionsChecked(app);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const actionsOf = (requestId: string) =>
    db.query<{ action: string }>(`SELECT action FROM audit_log WHERE request_id = $1 ORDER BY action`, [requestId], 'orders');

  it("reads only the row's month: a lock held on another month leaves the request with its one record() row", async () => {
    const locker = await db.connect('orders');
    try {
      // Another month than the row's (rows of this month go to the first partition, the legacy one on a new install).
      const { rows } = await locker.query<{ month: string }>(
        `SELECT c.relname AS month FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
         WHERE h.inhparent = 'audit_log'::regclass AND c.relname LIKE 'audit_log_p%' ORDER BY 1 LIMIT 1`,
      );
      await locker.query('BEGIN');
      // An archiving job, a VACUUM FULL or a retention run may hold a month for a while.
      await locker.query(`LOCK TABLE ${rows[0].month} IN ACCESS EXCLUSIVE MODE`);
      await request(app.getHttpServer()).post('/orders').set('x-request-id', 'locked-1').send({ tag: 'locked-1' }).expect(201);
    } finally {
      await locker.query('COMMIT');
      await locker.end();
    }
    expect(await actionsOf('locked-1')).toEqual([{ action: 'order_recorded' }]);
  });
});
