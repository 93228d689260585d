import { type INestApplication } from '@nestjs/common';
import { AuditRetention, AuditService } from '../src/audit';
import { sealingKeys, startSealingApp } from './support/integrity';
import { sleep, TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';
import { TcpProxy } from './support/tcp-proxy';

// A retention run meets a TCP black hole (the server accepts, never answers) on the DataSource's
// own connections (no integrity.sealerDatabaseUrl). Its statement and lock timeouts are server
// settings, which a server that answers nothing never applies. docs/FAILURES.md, "app.close()":
// "The module's shutdown returns within about 3 × writeTimeoutMs plus a spool write".
const WRITE_TIMEOUT_MS = 200;
// The same bound and slack as test/silent-partition.e2e-spec.ts.
const CLOSE_BOUND_MS = 4 * WRITE_TIMEOUT_MS;
const CLOSE_SLACK_MS = 1500;

describe('retention in a black hole', () => {
  const keys = sealingKeys();
  let db: TestPostgres;
  let proxy: TcpProxy;
  let app: INestApplication | undefined;
  let stderr: StderrCapture;

  beforeEach(async () => {
    db = await TestPostgres.start();
    proxy = await TcpProxy.start(db.port);
    stderr = new StderrCapture();
    app = await startSealingApp(db.url().replace(`:${db.port}/`, `:${proxy.port}/`), {
      writeTimeoutMs: WRITE_TIMEOUT_MS,
      retryBackoffMs: 50,
      retryBackoffMaxMs: 200,
      integrity: { enabled: true, intervalMs: 600_000, signingKey: keys.privatePem },
      retention: { months: 1 },
    });
    await app.get(AuditRetention).retainNow();
  }, 60_000);

  afterEach(async () => {
    stderr?.restore();
    await proxy?.stop();
    await Promise.race([app?.close(), sleep(5000)]);
    await db?.stop();
  }, 30_000);

  it('app.close() during a black hole with a retention run under way returns within the documented bound', async () => {
    const retention = (app as INestApplication).get(AuditRetention);
    proxy.blackhole();
    void retention.retainNow();
    void (app as INestApplication).get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'close-1' });
    await sleep(1000);
    const closing = Date.now();
    await Promise.race([(app as INestApplication).close(), sleep(CLOSE_BOUND_MS + CLOSE_SLACK_MS + 5000)]);
    const closeMs = Date.now() - closing;
    app = undefined;
    expect(closeMs).toBeLessThan(CLOSE_BOUND_MS + CLOSE_SLACK_MS);
  }, 30_000);
});
