import { type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditPartitions, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { sleep, TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';
import { TcpProxy } from './support/tcp-proxy';

// Partition upkeep meets a TCP black hole (the server accepts, never answers). Its
// statement_timeout is a server setting, which a server that answers nothing never applies: the
// upkeep runs on client-side deadlines instead (docs/LIFECYCLE.md).
// docs/FAILURES.md, "app.close()": "none of its writes holds a connection past its deadline, so
// TypeORM's destroy() … waits for none of the module's, in a partition too"; upkeep's own promise
// (docs/LIFECYCLE.md) is that a check that fails is tried again in the next interval.
const WRITE_TIMEOUT_MS = 200;
// The same bound and slack as test/silent-partition.e2e-spec.ts.
const CLOSE_BOUND_MS = 4 * WRITE_TIMEOUT_MS;
const CLOSE_SLACK_MS = 1500;

describe('partition upkeep in a black hole', () => {
  let db: TestPostgres;
  let proxy: TcpProxy;
  let app: INestApplicationContext | undefined;
  let stderr: StderrCapture;

  beforeAll(async () => {
    db = await TestPostgres.start();
    proxy = await TcpProxy.start(db.port);
    stderr = new StderrCapture();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url().replace(`:${db.port}/`, `:${proxy.port}/`),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
          extra: { max: 10 },
        }),
        AuditModule.forRoot({ auditHttp: false, writeTimeoutMs: WRITE_TIMEOUT_MS, retryBackoffMs: 50, retryBackoffMaxMs: 200 }),
      ],
    }).compile();
    app = await moduleRef.init();
    const partitions = app.get(AuditPartitions);
    await eventually(() => partitions.status()?.lastRunAt, 10_000, 'the first upkeep');
  }, 60_000);

  afterAll(async () => {
    stderr?.restore();
    await proxy?.stop();
    await Promise.race([app?.close(), sleep(5000)]);
    await db?.stop();
  }, 30_000);

  it('an upkeep caught by the black hole does not wedge upkeep once the network is back', async () => {
    const partitions = (app as INestApplicationContext).get(AuditPartitions);
    proxy.blackhole();
    let failure: string | null | undefined;
    // Read as the caught run ends, before the next one (queued behind it) clears it.
    const caught = partitions.maintainNow().then(() => (failure = partitions.status()?.lastError));
    await sleep(2000);
    proxy.forward();
    const before = partitions.status()?.lastRunAt;
    const next = await Promise.race([partitions.maintainNow().then(() => 'done'), sleep(15_000).then(() => 'still waiting after 15 s')]);
    await caught;
    expect({ next, ranAgain: partitions.status()?.lastRunAt !== before, lastError: partitions.status()?.lastError }).toEqual({
      next: 'done',
      ranAgain: true,
      lastError: null,
    });
    // While it lasted, health said why.
    expect(failure).toMatch(/^AUDIT_DB_TIMEOUT: partition upkeep got no (answer|connection) within \d+ ms/);
  }, 30_000);

  it('app.close() during a black hole with upkeep under way returns within the documented bound', async () => {
    const partitions = (app as INestApplicationContext).get(AuditPartitions);
    const audit = (app as INestApplicationContext).get(AuditService);
    proxy.blackhole();
    void partitions.maintainNow();
    void audit.log({ action: 'nda_created', entityType: 'NDA', entityId: 'close-1' });
    await sleep(1000);
    const closing = Date.now();
    await Promise.race([(app as INestApplicationContext).close(), sleep(CLOSE_BOUND_MS + CLOSE_SLACK_MS + 5000)]);
    const closeMs = Date.now() - closing;
    app = undefined;
    expect(closeMs).toBeLessThan(CLOSE_BOUND_MS + CLOSE_SLACK_MS);
  }, 30_000);
});
