import { Module } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { type AddressInfo } from 'node:net';
import { type Browser } from 'playwright-core';
import request from 'supertest';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { launchChromium, listRows } from './support/browser';
import { TestPostgres } from './support/postgres';
import { AuditorHeaderGuard } from './support/query-app';

// The viewer behind Fastify, under a path of the app's choosing and a global prefix, with a guard that reads a header
// (the browser is given it for every request, as a proxy in front of the app would add it).
describe('the audit viewer behind Fastify', () => {
  let db: TestPostgres;
  let app: NestFastifyApplication;
  let browser: Browser;

  beforeAll(async () => {
    [db, browser] = await Promise.all([TestPostgres.start(), launchChromium()]);
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(),
          entities: [AuditLog],
          migrations: [...AUDIT_MIGRATIONS],
          migrationsRun: true,
        }),
        AuditModule.forRoot({ http: { guard: AuditorHeaderGuard, path: 'admin/audit', viewer: true } }),
      ],
    })
    class FastifyViewerModule {}
    const moduleRef = await Test.createTestingModule({ imports: [FastifyViewerModule] }).compile();
    app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
    app.setGlobalPrefix('api');
    await app.listen(0, '127.0.0.1');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await db?.stop();
  });

  it('serves the page, its files and the panel data with the same headers, behind the guard', async () => {
    const server = app.getHttpServer();
    for (const path of [
      '/api/admin/audit/ui',
      '/api/admin/audit/ui/list.js',
      '/api/admin/audit/viewer/status',
      '/api/admin/audit/viewer/volume',
      '/api/admin/audit/viewer/rows',
    ]) {
      await request(server).get(path).expect(403);
      const served = await request(server).get(path).set('x-auditor', 'yes').expect(200);
      expect(served.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(served.headers['x-content-type-options']).toBe('nosniff');
    }
    const page = await request(server).get('/api/admin/audit/ui').set('x-auditor', 'yes');
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.text).toContain('<base href="/api/admin/audit/ui/" />');
    const status = await request(server).get('/api/admin/audit/viewer/status').set('x-auditor', 'yes');
    expect(status.body).toEqual({
      now: expect.any(String),
      status: expect.objectContaining({ state: 'up' }),
      integrity: null,
      history: [expect.objectContaining({ state: 'up' })],
    });
    const volume = await request(server).get('/api/admin/audit/viewer/volume').set('x-auditor', 'yes');
    expect(volume.body.hours).toHaveLength(24);
  });

  it('lists what the app logged, in Chromium', async () => {
    await app.get(AuditService).log({ action: 'invoice_paid', entityType: 'Invoice', entityId: 'inv-1', userId: 'erin' });
    await eventually(
      async () => (await request(app.getHttpServer()).get('/api/admin/audit').set('x-auditor', 'yes')).body.items?.length === 1,
    );
    const port = (app.getHttpServer().address() as AddressInfo).port;
    const context = await browser.newContext({ baseURL: `http://127.0.0.1:${port}`, extraHTTPHeaders: { 'x-auditor': 'yes' } });
    try {
      const page = await context.newPage();
      await page.goto('/api/admin/audit/ui');
      await page.waitForSelector('body[data-ready="true"]');
      expect((await listRows(page)).map((r) => r.slice(1))).toEqual([['erin', 'invoice_paid', 'Invoice inv-1', 'success']]);
    } finally {
      await context.close();
    }
  });
});
