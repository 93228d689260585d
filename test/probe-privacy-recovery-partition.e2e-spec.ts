// Promise (docs/FAILURES.md, "a silent network partition"): "each try times out after
// `writeTimeoutMs` and gives up its connection … memory stays flat however long it lasts", and
// "after it: the service tries by itself … and flushes the ring" (test/silent-partition); "The
// module's own work on the DataSource's pool has client-side deadlines too … so that a server
// that accepts and never answers holds neither a caller nor a pool connection for ever".
//
// Break: with `privacy` on, each recovery try of the ring (or the spool) first looks up the
// erasures since its oldest entry (`insertRecovered`, src/audit/audit.service.ts) with a plain
// `repository.manager.query()` raced against `writeTimeoutMs`. At the deadline the try fails, but
// the query keeps its pool connection: in a silent partition nothing answers it (nor the opening
// of a new connection), so every try leaves one connection of the DataSource taken for good. A
// partition that outlasts ten tries (the pool's default size; with the default back-off, about
// four minutes) leaves the pool with none: once the network is back, no try gets a connection, the
// ring is never flushed and the service stays `down` (and the app's own queries on a shared
// DataSource wait for ever).
//
// Observed: after the partition heals, the buffered entries are never written (15 s), the service
// stays `down`, a `SELECT 1` on the app's DataSource gets no answer within 5 s, and the pool holds
// 10 connections, none idle. The same run without `privacy` flushes the 5 entries.
// Severity: high (privacy on, a silent partition of a few minutes: the audit trail stops until a
// restart, entries only in the ring and on stderr).
// Fix guess: run the erasure look-up as the writer's batches run (`queries.run` on a connection
// checked out for it, socket destroyed at the deadline), or on a DbSession with its deadlines.
import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { type Server as NetServer, type Socket } from 'node:net';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { PartitionProxy } from './support/partition-proxy';
import { sleep, TestPostgres } from './support/postgres';

const WRITE_TIMEOUT_MS = 300;

describe('probe: recovery tries with privacy on during a silent partition', () => {
  const database = 'probe_privacy_partition';
  let db: TestPostgres;
  let proxy: PartitionProxy;
  let app: INestApplication;
  const accepted = new Set<Socket>();

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
        AuditModule.forRoot({
          auditHttp: false,
          writeTimeoutMs: WRITE_TIMEOUT_MS,
          retryBackoffMs: 100,
          retryBackoffMaxMs: 300,
          privacy: { personalData: ['changes.email'] },
        }),
      ],
    })
    class PrivacyPartitionModule {}
    const moduleRef = await Test.createTestingModule({ imports: [PrivacyPartitionModule] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
  }, 60_000);

  afterAll(async () => {
    for (const socket of accepted) socket.destroy();
    await proxy?.stop();
    await app?.close();
    await db?.stop();
  }, 60_000);

  it('gives its connections back: once the network is back, the ring is flushed', async () => {
    const audit = app.get(AuditService);
    const pool = (app.get(DataSource).driver as unknown as { master: { totalCount: number; idleCount: number } }).master;
    await audit.log({
      action: 'profile_updated',
      entityType: 'Profile',
      entityId: 'before',
      userId: 'u1',
      changes: { email: 'a@example.com' },
    });
    await eventually(() => audit.status().state === 'up' && audit.status().pending === 0, 10_000, 'the first entry committed');
    proxy.partition();
    for (let i = 0; i < 5; i++) {
      await audit.log({
        action: 'profile_updated',
        entityType: 'Profile',
        entityId: `p-${i}`,
        userId: 'u1',
        changes: { email: 'a@example.com' },
      });
    }
    // A partition that outlasts ten recovery tries (here within seconds: a short back-off).
    await eventually(() => audit.status().state !== 'up' && pool.totalCount - pool.idleCount >= 10, 30_000, 'ten tries made').catch(
      () => undefined,
    );
    await sleep(2000);
    proxy.heal();
    let flushed = false;
    for (let waited = 0; waited < 15_000 && !flushed; waited += 500) {
      await sleep(500);
      const status = audit.status();
      flushed = status.state === 'up' && status.buffered === 0 && status.pending === 0;
    }
    const stored = (await db.query(`SELECT count(*)::int AS n FROM audit_log WHERE entity_id LIKE 'p-%'`, [], database))[0].n;
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
      stored: 5,
    });
  }, 90_000);
});
