import { partitionsChecked } from './support/app';
import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { AUDIT_MIGRATIONS, AuditConfigError, AuditLog, type AuditModuleExtras, AuditModule, AuditService } from '../src/audit';
import { TestPostgres } from './support/postgres';
import { AuditorHeaderGuard, startQueryApp } from './support/query-app';

// The read side's switches: off by default, never on without the app's guard, and a read bounded
// by its own timeout.
describe('the read side of the audit module', () => {
  let db: TestPostgres;

  beforeAll(async () => {
    db = await TestPostgres.start();
  }, 60_000);

  afterAll(async () => {
    await db?.stop();
  });

  async function appWith(audit: ReturnType<typeof AuditModule.forRoot>): Promise<INestApplication<Server>> {
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
        }),
        audit,
      ],
    })
    class ReadSideAppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [ReadSideAppModule] }).compile();
    const app = moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
    await app.init();
    await partitionsChecked(app);
    return app;
  }

  it.each<[string, AuditModuleExtras['http']]>([
    ['an empty http option', {} as never],
    ['a path but no guard', { path: 'audit' } as never],
    ['something that is not a guard', { guard: { allow: true } } as never],
  ])('refuses to start with %s, naming http.guard', (_, http) => {
    // Thrown by forRoot() itself: the app's module fails to load, before any connection is made.
    expect(() => AuditModule.forRoot({ http })).toThrow(AuditConfigError);
    expect(() => AuditModule.forRoot({ http })).toThrow(/AuditModule option "http\.guard" must be a guard .*never served without one/);
  });

  it('refuses the same through forRootAsync, and a path that is not a plain route prefix', () => {
    expect(() => AuditModule.forRootAsync({ http: {} as never, useFactory: () => ({}) })).toThrow(/"http\.guard"/);
    expect(() => AuditModule.forRoot({ http: { guard: AuditorHeaderGuard, path: '../audit?' } })).toThrow(/"http\.path"/);
  });

  it('serves nothing without the http option, and serves it from forRootAsync behind the guard', async () => {
    const off = await appWith(AuditModule.forRoot({}));
    try {
      await request(off.getHttpServer()).get('/audit').set('x-auditor', 'yes').expect(404);
    } finally {
      await off.close();
    }
    const on = await appWith(
      AuditModule.forRootAsync({ http: { guard: AuditorHeaderGuard, path: 'admin/audit' }, useFactory: () => ({}) }),
    );
    try {
      await request(on.getHttpServer()).get('/admin/audit').expect(403);
      await request(on.getHttpServer()).get('/admin/audit').set('x-auditor', 'yes').expect(200, { items: [], nextCursor: null });
    } finally {
      await on.close();
    }
  });

  it('answers 503 when a read outlasts readTimeoutMs (a table lock), and the write path stays up', async () => {
    const app = await startQueryApp(db.url(), { readTimeoutMs: 300 });
    const locker = await db.connect();
    try {
      await locker.query('BEGIN; LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
      for (const path of ['/audit?userId=alice', '/audit/export?format=csv']) {
        const started = performance.now();
        const response = await request(app.getHttpServer()).get(path).set('x-auditor', 'yes').expect(503);
        expect(response.body).toMatchObject({ code: 'AUDIT_READ_TIMEOUT', message: 'reading the audit trail took longer than 300 ms' });
        expect(performance.now() - started).toBeLessThan(2000);
      }
      expect(app.get(AuditService).status()).toMatchObject({ state: 'up', lastError: null });
      await locker.query('ROLLBACK');
      await request(app.getHttpServer()).get('/audit').set('x-auditor', 'yes').expect(200);
    } finally {
      await locker.end();
      await app.close();
    }
  });
});
