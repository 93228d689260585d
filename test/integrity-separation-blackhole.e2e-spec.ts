import { type INestApplication } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import { type DataSource, type Repository } from 'typeorm';
import { AUDIT_EVENTS, type AuditLog, AuditSealer, AuditService } from '../src/audit';
import { type ResolvedAuditOptions } from '../src/audit/audit-options';
import { AUDIT_OPTIONS, AUDIT_REPOSITORY } from '../src/audit/audit.constants';
import { AuditSealerConnection } from '../src/audit/integrity/sealer-connection';
import { AuditReporter, ConsoleSink } from '../src/audit/sinks';
import { eventually } from './support/app';
import { sealingKeys, startSealingApp } from './support/integrity';
import { sleep, TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';
import { TcpProxy } from './support/tcp-proxy';

// With integrity.sealerDatabaseUrl, the sealer checks once, on the app's own DataSource, whether
// the app's role can still insert seals (docs/INTEGRITY.md, "Roles"). That check meets a TCP black
// hole (the app's database accepts and never answers) while the sealer's own database answers:
// docs/FAILURES.md, "a server that accepts and never answers holds neither a caller nor a pool
// connection for ever". The check is given up within the sealer's round-trip deadline
// (statement bound plus writeTimeoutMs: 5.2 s here), sealing goes on through the sealer's own
// connection, and app.close() returns within its documented bound.
const WRITE_TIMEOUT_MS = 200;
// The same bound and slack as test/retention-blackhole.e2e-spec.ts.
const CLOSE_BOUND_MS = 4 * WRITE_TIMEOUT_MS;
const CLOSE_SLACK_MS = 1500;

describe("the sealer's separation check in a black hole", () => {
  const keys = sealingKeys();
  let db: TestPostgres;
  let proxy: TcpProxy;
  let app: INestApplication | undefined;
  let stderr: StderrCapture;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('separation');
    proxy = await TcpProxy.start(db.port);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url('separation').replace(`:${db.port}/`, `:${proxy.port}/`), {
      writeTimeoutMs: WRITE_TIMEOUT_MS,
      integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem, sealerDatabaseUrl: db.url('separation') },
    });
  }, 60_000);

  afterAll(async () => {
    stderr?.restore();
    await proxy?.stop();
    await Promise.race([app?.close(), sleep(5000)]);
    await db?.stop();
  }, 30_000);

  it('gives the check up within its deadline, seals through its own connection, and app.close() returns in time', async () => {
    const started = app as INestApplication;
    // The app's sealer checks the separation at its first attempt, on the app's pool: that attempt is
    // over before the black hole (sealNow() runs after it, or makes it when it has not run yet).
    await started.get(AuditSealer).sealNow();
    await started.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'sep-1' });
    await eventually(
      async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id = 'sep-1'`, [], 'separation')).length === 1,
      10_000,
      'the row written',
    );
    // A sealer of this app that has not checked the separation yet (the app's own checked it above).
    const sealer = new AuditSealer(
      started.get<ResolvedAuditOptions>(AUDIT_OPTIONS),
      started.get<Repository<AuditLog>>(AUDIT_REPOSITORY),
      started.get(ConsoleSink),
      started.get(AuditReporter),
      started.get(AuditSealerConnection),
    );
    proxy.blackhole();
    await sealer.sealNow();

    const sealed = await db.query<{ n: number }>('SELECT coalesce(sum(row_count), 0)::int AS n FROM audit_seal', [], 'separation');
    // pg-pool's own counts: connections of the app's pool checked out and not given back.
    const pool = (started.get<DataSource>(getDataSourceToken()).driver as unknown as { master: { totalCount: number; idleCount: number } })
      .master;
    expect({
      sealed: sealed[0].n,
      failed: stderr.of(AUDIT_EVENTS.sealFailed).map((line) => line.error),
      held: pool.totalCount - pool.idleCount,
    }).toEqual({ sealed: 1, failed: [], held: 0 });
    const closing = Date.now();
    await Promise.race([started.close(), sleep(CLOSE_BOUND_MS + CLOSE_SLACK_MS + 5000)]);
    const closeMs = Date.now() - closing;
    app = undefined;
    expect(closeMs).toBeLessThan(CLOSE_BOUND_MS + CLOSE_SLACK_MS);
  }, 40_000);
});
