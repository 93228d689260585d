// docs/FAILURES.md, "Bounds of the write path": the module's work on the DataSource's pool "holds
// neither a caller nor a pool connection for ever". A pool with every connection taken queues a
// checkout and, once a connection leaves it, opens a new one for it; in a silent network partition
// that opening never ends (`pg` has no deadline of its own when the DataSource sets no
// `connectTimeoutMS`). A checkout of the module given up at its deadline therefore leaves the
// pool's queue, and a connection the pool opened for it is destroyed: look-ups, and the writer's
// batches, that waited for a connection of a full pool during a partition leave none of its
// connections behind, and once the network is back the pool serves and the service flushes.
import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { type DbPool, queryWithin } from '../src/audit/db-session';
import { eventually } from './support/app';
import { PartitionProxy } from './support/partition-proxy';
import { sleep, TestPostgres } from './support/postgres';

const timeout = (step: 'connect' | 'query', ms: number) => new Error(`${step}: no answer within ${ms} ms`);

/** Whether `work` settles within `ms`; its timer cleared either way. */
async function within(work: Promise<unknown> | undefined, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([(work ?? Promise.resolve()).then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `query` answers within 5 s: the app's own query on the pool, as its business code would make it. */
const answers = (query: () => Promise<unknown>) => within(query(), 5000);

describe('checkouts that waited for a connection of a full pool in a silent partition', () => {
  let db: TestPostgres;
  let proxy: PartitionProxy;
  let pool: Pool | undefined;
  let app: INestApplication | undefined;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('writer_queued');
    proxy = await PartitionProxy.start(db.port);
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
    await within(pool?.end(), 10_000);
    await within(app?.close(), 10_000);
    await db?.stop();
  }, 60_000);

  it('look-ups leave none of the pool connections behind once the network is back', async () => {
    pool = new Pool({ connectionString: db.url().replace(`:${db.port}/`, `:${proxy.port}/`), max: 2 });
    pool.on('error', () => undefined);
    await pool.query('SELECT 1');
    proxy.partition();
    // More look-ups than the pool has connections, one every 100 ms, each given 300 ms.
    const lookups = Array.from({ length: 6 }, (_, i) =>
      sleep(i * 100).then(() =>
        queryWithin(pool as unknown as DbPool, 'SELECT 1', [], 300, timeout).then(
          () => 'answered',
          () => 'given up',
        ),
      ),
    );
    expect(await Promise.all(lookups)).toEqual(Array(6).fill('given up'));
    proxy.heal();
    expect(await answers(() => pool!.query('SELECT 1'))).toBe(true);
  }, 60_000);

  it("the writer's batches leave none behind either: once the network is back, the ring is flushed and the pool serves", async () => {
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url('writer_queued').replace(`:${db.port}/`, `:${proxy.port}/`),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
          // Fewer connections than the writer's outstanding attempts: its batches wait in the pool's queue.
          extra: { max: 2 },
        }),
        AuditModule.forRoot({ auditHttp: false, writeTimeoutMs: 300, batchSize: 5, retryBackoffMs: 100, retryBackoffMaxMs: 300 }),
      ],
    })
    class QueuedWriterModule {}
    const moduleRef = await Test.createTestingModule({ imports: [QueuedWriterModule] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const audit = app.get(AuditService);
    await audit.log({ action: 'nda_created', entityType: 'NDA', entityId: 'before' });
    await eventually(() => audit.status().state === 'up' && audit.status().pending === 0, 10_000, 'the first entry committed');
    proxy.partition();
    // Four batches of five at once: more than the pool's two connections.
    await Promise.all(Array.from({ length: 20 }, (_, i) => audit.log({ action: 'nda_created', entityType: 'NDA', entityId: `q-${i}` })));
    // A partition that outlasts more recovery tries than the pool has connections.
    const tries = () => audit.stateHistory().filter((change) => change.state === 'half-open').length;
    await eventually(() => tries() >= 4, 30_000, 'four recovery tries');
    proxy.heal();
    // Past the 5 s a connection opened for a write may take, and the cool-down.
    const flushed = await eventually(
      () => {
        const status = audit.status();
        return status.state === 'up' && status.buffered === 0 && status.pending === 0;
      },
      20_000,
      'the ring flushed',
    ).catch(() => false);
    const [{ n: stored }] = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_log WHERE entity_id LIKE 'q-%'`,
      [],
      'writer_queued',
    );
    const served = await answers(() => app!.get(DataSource).query('SELECT 1'));
    expect({ flushed, served, stored }).toEqual({ flushed: true, served: true, stored: 20 });
  }, 90_000);
});
