import { type INestApplication, Module } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { eventually } from './support/app';
import { TestPostgres } from './support/postgres';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule } from '../src/audit';
import { AuditorHeaderGuard, orderedId, seed, startQueryApp } from './support/query-app';

// docs/QUERY.md, "Export": HEAD <path>/export answers the head an export would have (its type and
// file name, 400 on bad input, 503 with Retry-After while maxExports run) without reading the
// trail: it takes no export slot and waits on no lock of the audit table.
describe('HEAD on the export route', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let locker: Client;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startQueryApp(db.url(), { maxExports: 1, readTimeoutMs: 3000 });
    await seed(db, [{ id: orderedId(1), occurredAt: '2026-10-01T00:00:00Z' }]);
    locker = new Client({ connectionString: db.url() });
    await locker.connect();
  }, 60_000);

  afterAll(async () => {
    await locker?.end();
    await app?.close();
    await db?.stop();
  });

  it("answers the export's head at once while the audit table is locked: the trail is not read", async () => {
    await locker.query('BEGIN; LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
    try {
      const head = await request(app.getHttpServer()).head('/audit/export?format=csv&from=2026-10-01').set('x-auditor', 'yes');
      expect({ status: head.status, type: head.headers['content-type'], disposition: head.headers['content-disposition'] }).toEqual({
        status: 200,
        type: 'text/csv; charset=utf-8; header=present',
        disposition: expect.stringMatching(/^attachment; filename="audit-.+\.csv"$/),
      });
      const blocked = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
      );
      expect(blocked[0].n).toBe(0);
    } finally {
      await locker.query('ROLLBACK');
    }
  }, 30_000);

  it('answers 503 with Retry-After while maxExports exports are running, as GET would', async () => {
    await locker.query('BEGIN; LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
    let running: Promise<request.Response> | undefined;
    try {
      // The one export slot, taken by an export waiting on the lock.
      running = request(app.getHttpServer())
        .get('/audit/export')
        .set('x-auditor', 'yes')
        .then((r) => r);
      await eventually(
        async () =>
          (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'`))[0].n === 1,
      );
      const head = await request(app.getHttpServer()).head('/audit/export').set('x-auditor', 'yes');
      expect({ status: head.status, retryAfter: head.headers['retry-after'] }).toEqual({ status: 503, retryAfter: '3' });
    } finally {
      await locker.query('ROLLBACK');
      await running;
    }
  }, 30_000);

  it('answers the head without reading the trail behind Fastify too (whose own HEAD route would run the GET)', async () => {
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
        }),
        AuditModule.forRoot({ readTimeoutMs: 3000, http: { guard: AuditorHeaderGuard } }),
      ],
    })
    class FastifyQueryModule {}
    const moduleRef = await Test.createTestingModule({ imports: [FastifyQueryModule] }).compile();
    const fastify = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
    await fastify.listen(0, '127.0.0.1');
    await locker.query('BEGIN; LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
    try {
      const head = await request(fastify.getHttpServer()).head('/audit/export?format=ndjson').set('x-auditor', 'yes');
      expect({ status: head.status, type: head.headers['content-type'] }).toEqual({
        status: 200,
        type: 'application/x-ndjson; charset=utf-8',
      });
    } finally {
      await locker.query('ROLLBACK');
      await fastify.close();
    }
  }, 30_000);

  it('refuses what GET refuses: bad input (400), no guard (403)', async () => {
    const server = app.getHttpServer();
    expect((await request(server).head('/audit/export?format=xml').set('x-auditor', 'yes')).status).toBe(400);
    expect((await request(server).head('/audit/export?colour=red').set('x-auditor', 'yes')).status).toBe(400);
    expect((await request(server).head('/audit/export?from=yesterday').set('x-auditor', 'yes')).status).toBe(400);
    expect((await request(server).head('/audit/export')).status).toBe(403);
  });
});
