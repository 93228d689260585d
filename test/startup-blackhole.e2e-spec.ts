import { type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { sleep, TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';
import { TcpProxy } from './support/tcp-proxy';

// The app starts while the audit database is a TCP black hole (the connection is
// accepted, nothing is ever answered), with a DataSource left to the module (`manualInitialization`)
// with pg's default connect timeout (none) and with the example app's 5 s. docs/FAILURES.md, "Start-up while the audit database is
// down": the module "connects the DataSource in the background, running its migrations, buffers
// entries meanwhile, and retries with the same backoff". Once the black hole ends, the module must
// connect and flush what it buffered, by itself.
const WRITE_TIMEOUT_MS = 300;

describe.each([
  ["no connect timeout (pg's default)", { max: 10 }],
  ["the example app's 5 s connect timeout", { max: 10, connectionTimeoutMillis: 5000 }],
])('boot into a black-holed audit database, %s', (_, extra) => {
  let db: TestPostgres;
  let proxy: TcpProxy;
  let app: INestApplicationContext | undefined;
  let stderr: StderrCapture;

  beforeAll(async () => {
    db = await TestPostgres.start();
    proxy = await TcpProxy.start(db.port);
    proxy.blackhole();
    stderr = new StderrCapture();
  }, 60_000);

  afterAll(async () => {
    stderr?.restore();
    await proxy?.stop();
    await Promise.race([app?.close(), sleep(5000)]);
    await db?.stop();
  }, 30_000);

  it('starts, buffers, and once the black hole ends connects, migrates and flushes by itself', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url().replace(`:${db.port}/`, `:${proxy.port}/`),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
          manualInitialization: true,
          extra,
        }),
        AuditModule.forRoot({ auditHttp: false, writeTimeoutMs: WRITE_TIMEOUT_MS, retryBackoffMs: 100, retryBackoffMaxMs: 300 }),
      ],
    }).compile();
    const started = Date.now();
    app = await moduleRef.init();
    expect(Date.now() - started).toBeLessThan(10_000);
    const audit = app.get(AuditService);
    for (let n = 0; n < 3; n += 1) void audit.log({ action: 'nda_created', entityType: 'NDA', entityId: `boot-${n}` });
    // The connect the module began at start-up gives up first: the service is down while the three
    // entries still wait for that connection, each until its own write deadline, and only then go
    // to the ring. Waited for together, not one after the other.
    await eventually(
      () => audit.status().state !== 'up' && audit.status().buffered === 3,
      5000,
      'the service down, three entries buffered',
    );
    expect(audit.status().buffered).toBe(3);
    // A few retries into the black hole.
    await sleep(1500);

    proxy.forward();
    const committed = await eventually(
      async () => {
        const rows = await db.query<{ n: string }>('SELECT count(*) AS n FROM audit_log');
        return Number(rows[0].n) === 3;
      },
      20_000,
      'the three buffered entries committed after the black hole ended',
    ).catch((error: Error) => error.message);
    expect({ committed, state: audit.status().state }).toEqual({ committed: true, state: 'up' });
  }, 60_000);
});
