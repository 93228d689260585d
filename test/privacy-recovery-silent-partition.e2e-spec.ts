// With `privacy` on, each recovery try of the ring (or the spool) first looks up the erasures
// since its oldest entry. That look-up runs on a connection of the app's DataSource checked out
// for it alone and destroyed at `writeTimeoutMs` (docs/FAILURES.md, "a silent network
// partition"): a partition that outlasts more tries than the pool has connections keeps none of
// them. Once the network is back, the service tries by itself, flushes the ring, and the app's
// own queries on the DataSource are served.
import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { dataSourceAnswers, eventually, flushedWithin } from './support/app';
import { PartitionProxy } from './support/partition-proxy';
import { TestPostgres } from './support/postgres';

const WRITE_TIMEOUT_MS = 300;

describe('recovery tries with privacy on during a silent partition', () => {
  const database = 'privacy_recovery_partition';
  let db: TestPostgres;
  let proxy: PartitionProxy;
  let app: INestApplication;

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
    await proxy?.stop();
    await app?.close();
    await db?.stop();
  }, 60_000);

  it('gives its connections back: once the network is back, the ring is flushed', async () => {
    const audit = app.get(AuditService);
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
    // A partition that outlasts more recovery tries than the pool has connections (ten; here within seconds: a short back-off).
    const tries = () => audit.stateHistory().filter((change) => change.state === 'half-open').length;
    await eventually(() => tries() >= 12, 30_000, 'twelve recovery tries');
    proxy.heal();
    // Well past every deadline of the write path once the network is back (the cool-down included).
    const flushed = await flushedWithin(audit, 15_000, 'the ring flushed');
    const stored = (await db.query(`SELECT count(*)::int AS n FROM audit_log WHERE entity_id LIKE 'p-%'`, [], database))[0].n;
    // The app's own query on the DataSource, as its business code would make it.
    const served = await dataSourceAnswers(app);
    expect({ flushed, served, stored }).toEqual({
      flushed: true,
      served: true,
      stored: 5,
    });
  }, 90_000);
});
