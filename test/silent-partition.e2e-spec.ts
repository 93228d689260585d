import { type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { MAX_OUTSTANDING_WRITES } from '../src/audit/audit.writer';
import { eventually, partitionsChecked } from './support/app';
import { sleep, TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';
import { TcpProxy } from './support/tcp-proxy';

// Issue 19, case 6: a silent partition (packets dropped, not refused) between the app and the
// audit database. Every write times out; each must release what it holds, so that memory stays
// flat however long it lasts, and app.close() returns within the README's bound.
const WRITE_TIMEOUT_MS = 200;
const PARTITION_MS = 15_000;
const RING_BYTES = 2 * 1024 * 1024;
// README: shutdown returns within about 3 × writeTimeoutMs plus a spool write (≤ writeTimeoutMs).
const CLOSE_BOUND_MS = 4 * WRITE_TIMEOUT_MS;
// Slack for a machine shared by many test runs; a hung close would take for ever.
const CLOSE_SLACK_MS = 1500;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface PgQuery {
  text?: string;
}
interface PgClientInternals {
  _activeQuery?: PgQuery | null;
  _queryQueue?: PgQuery[];
}
interface PgPoolInternals {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
  _clients: PgClientInternals[];
}

/** What the audit DataSource's pg pool holds for the writer: clients not idle, waiters, SQL text. */
function poolLoad(dataSource: DataSource) {
  const pool = (dataSource.driver as unknown as { master: PgPoolInternals }).master;
  const queries = pool._clients.flatMap((client) => [client._activeQuery, ...(client._queryQueue ?? [])]).filter((q) => q);
  return {
    busyClients: pool.totalCount - pool.idleCount,
    waiting: pool.waitingCount,
    unsettledQueries: queries.length,
    sqlBytes: queries.reduce((sum, q) => sum + (q?.text?.length ?? 0), 0),
  };
}

function heapUsed(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

describe('a silent network partition between the app and the audit database', () => {
  let db: TestPostgres;
  let proxy: TcpProxy;
  let app: INestApplicationContext | undefined;
  let stderr: StderrCapture;
  let traffic: NodeJS.Timeout | undefined;
  let logged = 0;
  let audit: AuditService;

  const startTraffic = (audit: AuditService) => {
    // About 16 KiB of text no engine can share or compress per entry, 50 entries a second.
    traffic = setInterval(() => {
      logged += 1;
      void audit.log({
        action: 'nda_updated',
        entityType: 'NDA',
        entityId: `p-${logged}`,
        metadata: { blob: randomBytes(8192).toString('hex') },
      });
    }, 20);
  };
  const stopTraffic = () => clearInterval(traffic);

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
          // No connect timeout: pg would wait for ever for a server that never answers.
          extra: { max: 10 },
        }),
        AuditModule.forRoot({
          auditHttp: false,
          writeTimeoutMs: WRITE_TIMEOUT_MS,
          retryBackoffMs: 50,
          retryBackoffMaxMs: 200,
          bufferMaxBytes: RING_BYTES,
        }),
      ],
    }).compile();
    app = await moduleRef.init();
    // Start-up waits for the first partition check at most writeTimeoutMs (200 ms here): one still
    // running when the partition begins would hold a connection of the pool the writes are counted in.
    await partitionsChecked(app);
  }, 60_000);

  afterAll(async () => {
    stopTraffic();
    stderr?.restore();
    // A close that hangs (the defect) must not keep the suite: the proxy's sockets go first.
    await proxy?.stop();
    await Promise.race([app?.close(), sleep(5000)]);
    await db?.stop();
  }, 30_000);

  it('while it lasts: a fixed number of attempts outstanding, no SQL text piling up, flat memory', async () => {
    audit = (app as INestApplicationContext).get(AuditService);
    const dataSource = (app as INestApplicationContext).get<DataSource>(getDataSourceToken());
    startTraffic(audit);
    await eventually(() => audit.status().state === 'up' && logged > 50, 10_000, 'traffic written');

    proxy.blackhole();
    await eventually(() => audit.status().state !== 'up', 5000, 'the service down');
    const started = Date.now();
    const samples: (ReturnType<typeof poolLoad> & { heap: number; ringBytes: number })[] = [];
    let tries = 0;
    while (Date.now() - started < PARTITION_MS) {
      await sleep(500);
      // The captured stderr lines (each with its 16 KiB entry) are counted and let go, not measured.
      tries += stderr.of('audit.db_write_failed').length;
      stderr.clear();
      samples.push({ ...poolLoad(dataSource), heap: heapUsed(), ringBytes: audit.status().bufferedBytes });
    }
    const worst = {
      busyClients: Math.max(...samples.map((s) => s.busyClients)),
      waiting: Math.max(...samples.map((s) => s.waiting)),
      unsettledQueries: Math.max(...samples.map((s) => s.unsettledQueries)),
      sqlBytes: Math.max(...samples.map((s) => s.sqlBytes)),
    };
    // The heap once the ring is full, against the end of the partition (medians of three, against GC noise).
    const ringFull = samples.filter((s) => s.ringBytes >= 0.9 * RING_BYTES).map((s) => s.heap);
    expect(ringFull.length).toBeGreaterThanOrEqual(10);
    const median = (three: number[]) => [...three].sort((a, b) => a - b)[1];
    const growthMiB = (median(ringFull.slice(-3)) - median(ringFull.slice(0, 3))) / 2 ** 20;
    // Many tries happened (each one a write that timed out), or this proves nothing.
    expect(tries).toBeGreaterThanOrEqual(20);
    const bounds = {
      busyClients: MAX_OUTSTANDING_WRITES,
      waiting: MAX_OUTSTANDING_WRITES,
      unsettledQueries: MAX_OUTSTANDING_WRITES,
      // At most one batch of the ring's bytes, in SQL text, per attempt.
      sqlBytes: MAX_OUTSTANDING_WRITES * 1.5 * RING_BYTES,
    };
    const within = Object.fromEntries(Object.entries(bounds).map(([key, bound]) => [key, worst[key as keyof typeof worst] <= bound]));
    expect({ worst, within }).toEqual({ worst, within: { busyClients: true, waiting: true, unsettledQueries: true, sqlBytes: true } });
    // Before the fix: +0.6 MiB a second (a pending query per try); after it, within a few hundred KiB.
    expect(growthMiB).toBeLessThan(2);
  }, 60_000);

  it('after it: the service tries by itself, is handed no wedged connection, and flushes the ring', async () => {
    proxy.forward();
    // A wedged connection would never let it recover; how soon it does depends on the machine's load
    // (batches of 16 KiB entries against a 200 ms write timeout), seen from 1 to 6 s at a load of 20.
    await eventually(() => audit.status().state === 'up' && audit.status().buffered === 0, 20_000, 'recovered and flushed');
    expect(stderr.of('audit.recovered').length).toBeGreaterThanOrEqual(1);
    // Entries logged from now on are committed straight away.
    const before = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM audit_log'))[0].n);
    await eventually(
      async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM audit_log'))[0].n) >= before + 20,
      5000,
      'new entries committed',
    );
  }, 40_000);

  it('app.close() in the middle of a partition returns within the README bound', async () => {
    proxy.blackhole();
    await eventually(() => audit.status().state !== 'up', 5000, 'down again');
    // A few tries into the partition, with traffic still coming.
    await sleep(2000);
    stopTraffic();
    const closing = Date.now();
    await Promise.race([(app as INestApplicationContext).close(), sleep(CLOSE_BOUND_MS + CLOSE_SLACK_MS + 5000)]);
    const closeMs = Date.now() - closing;
    app = undefined;
    expect(closeMs).toBeLessThan(CLOSE_BOUND_MS + CLOSE_SLACK_MS);
  }, 30_000);
});
