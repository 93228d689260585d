// A `record()` row written in a block TypeORM does not report stands for its request only if
// another connection finds it committed when the request's row is decided, within
// `writeTimeoutMs` (docs/GUIDE.md). That look-up runs on a connection of the app's DataSource
// checked out for it alone and destroyed at its deadline (docs/FAILURES.md, "Bounds of the write
// path"): requests decided while the network is silently partitioned (nothing answers, nothing
// is refused) keep none of the pool's connections. Once the network is back, the service flushes
// what it buffered by itself, the app's own queries on the DataSource are served, every row is
// stored, and `app.close()` returns.
import { Controller, type INestApplication, Module, Post, Query } from '@nestjs/common';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { Test } from '@nestjs/testing';
import { type Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { dataSourceAnswers, eventually, flushedWithin } from './support/app';
import { PartitionProxy } from './support/partition-proxy';
import { sleep, TestPostgres } from './support/postgres';

const WRITE_TIMEOUT_MS = 500;
const REQUESTS = 10;

/** Handlers that reached the gate (their block committed), and the gate they wait at before answering. */
const gate = { reached: 0, open: undefined as (() => void) | undefined, opened: Promise.resolve() };

@Controller('batches')
class BatchesController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  @Post()
  async run(@Query('tag') tag: string): Promise<{ ok: true }> {
    const runner = this.db.createQueryRunner();
    await runner.connect();
    try {
      // A block TypeORM does not report, committed: the record() row is the request's once seen committed.
      await runner.query('BEGIN');
      await this.audit.record({ action: 'batch_recorded', entityType: 'Batch', requestId: tag }, { manager: runner.manager });
      await runner.query('COMMIT');
    } finally {
      await runner.release();
    }
    gate.reached += 1;
    await gate.opened;
    return { ok: true };
  }
}

describe('record() rows decided while the network is silently partitioned', () => {
  const database = 'record_lookup_partition';
  let db: TestPostgres;
  let proxy: PartitionProxy;
  let app: INestApplication<Server>;
  let closing: Promise<void> | undefined;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    proxy = await PartitionProxy.start(db.port);
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(database).replace(`:${db.port}/`, `:${proxy.port}/`),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
        }),
        AuditModule.forRoot({ mode: 'sync', writeTimeoutMs: WRITE_TIMEOUT_MS }),
      ],
      controllers: [BatchesController],
    })
    class SettleAppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [SettleAppModule] }).compile();
    app = moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
    await app.listen(0, '127.0.0.1');
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
    await (closing ?? app?.close());
    await db?.stop();
  }, 60_000);

  it('gives its connections back: once the network is back, the rows flush and the pool serves again', async () => {
    gate.opened = new Promise<void>((resolve) => (gate.open = resolve));
    const answers = Array.from({ length: REQUESTS }, (_, i) =>
      request(app.getHttpServer())
        .post(`/batches?tag=settle-${i}`)
        .set('x-request-id', `settle-${i}`)
        .timeout(30_000)
        .then((r) => r.status),
    );
    await eventually(() => gate.reached === REQUESTS, 20_000, 'every block committed');
    // The network goes silent after the commits, before the requests' rows are decided.
    proxy.partition();
    gate.open?.();
    expect(await Promise.all(answers)).toEqual(Array(REQUESTS).fill(201));
    proxy.heal();
    const audit = app.get(AuditService);
    // Well past every deadline of the write path once the network is back (the cool-down included).
    const flushed = await flushedWithin(audit, 20_000, 'the rows flushed');
    const stored = (await db.query(`SELECT count(*)::int AS n FROM audit_log WHERE request_id LIKE 'settle-%'`, [], database))[0].n;
    // The app's own query on the DataSource, as its business code would make it.
    const served = await dataSourceAnswers(app);
    expect({ flushed, served, stored }).toEqual({
      flushed: true,
      served: true,
      // The ten record() rows, and the ten rows of the requests (their record() rows not seen committed in the partition).
      stored: 2 * REQUESTS,
    });
  }, 90_000);

  it('lets app.close() return (docs/FAILURES.md: within about 3 × writeTimeoutMs plus its disk calls)', async () => {
    // The network is back; 20 s is forty times writeTimeoutMs.
    closing = app.close();
    const closed = await Promise.race([closing.then(() => true), sleep(20_000).then(() => false)]);
    expect(closed).toBe(true);
  }, 60_000);
});
