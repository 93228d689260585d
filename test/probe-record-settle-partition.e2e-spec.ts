// Promise (docs/FAILURES.md, "Bounds of the write path"): "The module's own work on the
// DataSource's pool has client-side deadlines too … so that a server that accepts and never
// answers holds neither a caller nor a pool connection for ever"; and the state machine: once the
// fault heals the service "tries by itself" and flushes what it buffered. docs/GUIDE.md: a
// `record()` row written in a block TypeORM does not report "stands for the request only if
// another connection finds it committed when the request's row is decided (within
// `writeTimeoutMs`)".
//
// Break: that look-up (`committedElsewhere`, src/audit/diffs/unreported-transaction.ts) is a plain
// `dataSource.query()` raced against a timer. At the deadline the caller moves on, but the query
// keeps its pool connection: in a silent partition nothing ever answers it, so the connection
// never goes back to the pool. Each request decided during the partition takes one connection of
// the app's DataSource for good; ten of them (the pool's default size) and, after the network is
// back, the module's writer gets no connection (the rows stay buffered, the service stays down) and
// neither does the app's own code.
//
// Observed: after the partition heals, the ten request rows never reach the database, the service
// stays `down`, a `SELECT 1` on the app's DataSource gets no answer within 5 s, and the pool holds
// 10 connections, none idle, for as long as the test waits (16 s after the heal).
// Shutdown then never returns: TypeORM's destroy waits for the pool's connections to come back.
// Severity: high (a short silent partition under ordinary traffic leaves the app's DataSource
// without connections until a restart; the audit trail stops).
// Fix guess: run the look-up on a connection checked out with the same client-side deadlines as
// the sealer, upkeep and erase() (SealerSession-style), destroying its socket at the deadline.
import { Controller, type INestApplication, Module, Post, Query } from '@nestjs/common';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { Test } from '@nestjs/testing';
import { type Server } from 'node:http';
import { type Server as NetServer, type Socket } from 'node:net';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { eventually } from './support/app';
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

describe('probe: record() rows settled while the network is silently partitioned', () => {
  const database = 'probe_settle_partition';
  let db: TestPostgres;
  let proxy: PartitionProxy;
  let app: INestApplication<Server>;
  const accepted = new Set<Socket>();
  let closing: Promise<void> | undefined;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase(database);
    proxy = await PartitionProxy.start(db.port);
    // Every socket the proxy accepts, those it drops during the partition too, so that the end of the suite can close them.
    (proxy as unknown as { server: NetServer }).server.on('connection', (socket: Socket) => accepted.add(socket));
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
    for (const socket of accepted) socket.destroy();
    await proxy?.stop();
    await (closing ?? app?.close());
    await db?.stop();
  }, 60_000);

  it('gives its connections back: once the network is back, the rows flush and the pool serves again', async () => {
    gate.opened = new Promise<void>((resolve) => (gate.open = resolve));
    const answers = Array.from({ length: REQUESTS }, (_, i) =>
      request(app.getHttpServer())
        .post(`/batches?tag=settle-${i}`)
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
    let flushed = false;
    for (let waited = 0; waited < 20_000 && !flushed; waited += 500) {
      await sleep(500);
      const status = audit.status();
      flushed = status.state === 'up' && status.buffered === 0 && status.pending === 0;
    }
    const stored = (await db.query(`SELECT count(*)::int AS n FROM audit_log WHERE request_id LIKE 'settle-%'`, [], database))[0].n;
    // The app's own query on the DataSource, as its business code would make it.
    const served = await Promise.race([
      app
        .get(DataSource)
        .query('SELECT 1')
        .then(() => true),
      sleep(5000).then(() => false),
    ]);
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
