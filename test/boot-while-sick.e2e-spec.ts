import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { eventually, startExampleApp } from './support/app';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// A separate audit database that is down when the app starts: the app must start and serve,
// buffer from the first request, and run the audit migration and flush once the database is back.
describe('boot while the audit database is down', () => {
  let appDb: TestPostgres;
  let auditDb: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;

  beforeAll(async () => {
    [appDb, auditDb] = await Promise.all([TestPostgres.start(), TestPostgres.start()]);
    await auditDb.kill();
    stderr = new StderrCapture();
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await auditDb?.ensureRunning();
    await Promise.all([appDb?.stop(), auditDb?.stop()]);
  }, 30_000);

  it('starts, serves and buffers, then migrates and flushes when the database comes', async () => {
    const started = performance.now();
    app = await startExampleApp({
      DATABASE_URL: appDb.url(),
      AUDIT_DATABASE_URL: auditDb.url(),
      AUDIT_WRITE_TIMEOUT_MS: '1000',
      AUDIT_RETRY_BACKOFF_MS: '100',
      AUDIT_RETRY_BACKOFF_MAX_MS: '200',
      AUDIT_SPOOL_DIR: undefined,
      AUDIT_MODE: undefined,
      SENTRY_DSN: undefined,
    });
    expect(performance.now() - started).toBeLessThan(10_000);

    const ids: string[] = [];
    for (let n = 0; n < 3; n += 1) {
      const response = await request(app.getHttpServer())
        .post('/ndas')
        .send({ title: `NDA ${n}`, counterparty: 'Umbrella' })
        .expect(201);
      ids.push((response.body as { id: string }).id);
    }
    const health = await request(app.getHttpServer()).get('/health');
    expect(health.status).toBe(503);
    await eventually(() => stderr.of('audit.buffered').length === 3, 5000, 'three buffered entries');
    expect(stderr.of('audit.db_write_failed')[0].error).toMatchObject({ code: 'ECONNREFUSED' });

    await auditDb.restart();
    await eventually(async () => (await request(app.getHttpServer()).get('/health')).status === 200, 15_000, 'health 200');
    await eventually(() => stderr.of('audit.recovered').length === 1, 5000, 'the audit.recovered line');
    const rows = await auditDb.query<{ entity_id: string }>('SELECT entity_id FROM audit_log ORDER BY occurred_at');
    expect(rows.map((r) => r.entity_id)).toEqual(ids);
    const migrations = await auditDb.query<{ name: string }>('SELECT name FROM audit_migrations');
    expect(migrations.map((m) => m.name)).toEqual(['CreateAuditLog1732700000000', 'AuditIntegrity1764300000000']);
  }, 60_000);
});
