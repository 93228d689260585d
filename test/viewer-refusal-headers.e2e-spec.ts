import { type INestApplication, Module } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { TestPostgres } from './support/postgres';
import { AuditorHeaderGuard } from './support/query-app';

// Every answer of the viewer's routes carries its security headers (CSP, nosniff, no framing), the
// app's guard's refusal included: a browser shows that refusal (a cancelled sign-in), so it must not
// be framable either. On Express and on Fastify.
const MARK = 'a-stored-value';

async function startApp(url: string, fastify: boolean): Promise<INestApplication<Server>> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({ type: 'postgres', url, entities: [AuditLog], migrations: [...AUDIT_MIGRATIONS], migrationsRun: true }),
      AuditModule.forRoot({ http: { guard: AuditorHeaderGuard, path: 'audit', viewer: true } }),
    ],
  })
  class ViewerAppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [ViewerAppModule] }).compile();
  const app = fastify
    ? moduleRef.createNestApplication<INestApplication<Server>>(new FastifyAdapter() as never, { logger: false })
    : moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
  await app.listen(0, '127.0.0.1');
  if (fastify) await (app.getHttpAdapter().getInstance() as { ready: () => Promise<void> }).ready();
  return app;
}

describe.each([
  ['Express', false],
  ['Fastify', true],
])('the viewer security headers on refusals (%s)', (_name, fastify) => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const server = (): Server => app.getHttpServer();

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startApp(db.url(), fastify);
    await app.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'nda-k', userId: MARK });
    await eventually(async () => (await request(server()).get('/audit').set('x-auditor', 'yes')).body.items?.length === 1);
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('puts the viewer security headers on every answer of viewer/rows, refusals and errors included', async () => {
    const missing: string[] = [];
    const cases: Array<[string, Record<string, string>]> = [
      ['/audit/viewer/rows', { 'x-auditor': 'yes' }],
      ['/audit/viewer/rows?limit=100000', { 'x-auditor': 'yes' }],
      ['/audit/viewer/rows?bogus=1', { 'x-auditor': 'yes' }],
      ['/audit/viewer/rows', {}],
      ['/audit/viewer/rows', { 'x-auditor': 'no' }],
      ['/audit/ui', {}],
      ['/audit/ui/viewer.js', {}],
      ['/audit/viewer/status', {}],
    ];
    for (const [path, headers] of cases) {
      const res = await request(server()).get(path).set(headers);
      const csp = String(res.headers['content-security-policy'] ?? '');
      if (!csp.includes("frame-ancestors 'none'") || res.headers['x-content-type-options'] !== 'nosniff') {
        missing.push(
          `${path} ${JSON.stringify(headers)} -> ${res.status}, csp=${csp ? 'yes' : 'no'}, nosniff=${String(res.headers['x-content-type-options'])}`,
        );
      }
    }
    expect(missing).toEqual([]);
  });
});
