import { Controller, Param, Post, UseGuards } from '@nestjs/common';
import { Module } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import request from 'supertest';
import { Audited, AuditLog, AuditModule, CreateAuditLog1732700000000 } from '../src/audit';
import { settledRowsOf } from './support/capture-app';
import { TestPostgres } from './support/postgres';

@Controller('items')
class ItemsController {
  @Post(':id')
  @Audited('item_touched', { entityType: 'Item' })
  touch(@Param('id') id: string): { id: string } {
    return { id };
  }

  @Post(':id/locked')
  @UseGuards({ canActivate: () => false })
  @Audited('item_unlocked')
  unlock(@Param('id') id: string): { id: string } {
    return { id };
  }
}

// The same module behind Fastify: the route is stored as its pattern, never the URL with its query.
describe('auditing a Fastify app', () => {
  let db: TestPostgres;
  let app: NestFastifyApplication;

  beforeAll(async () => {
    db = await TestPostgres.start();
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url(),
          entities: [AuditLog],
          migrations: [CreateAuditLog1732700000000],
          migrationsRun: true,
        }),
        AuditModule.forRoot({}),
      ],
      controllers: [ItemsController],
    })
    class FastifyAppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [FastifyAppModule] }).compile();
    app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('stores the route pattern, not the URL with its query string', async () => {
    await request(app.getHttpServer()).post('/items/7?token=s3cr3t-in-the-url').set('x-request-id', 'fastify-route').expect(201);
    expect(await settledRowsOf(db, 'fastify-route')).toEqual([
      {
        action: 'item_touched',
        outcome: 'success',
        metadata: expect.objectContaining({ route: '/items/:id', statusCode: 201 }) as unknown,
      },
    ]);
  });

  it('records a request a guard refuses, with 403', async () => {
    await request(app.getHttpServer()).post('/items/7/locked').set('x-request-id', 'fastify-denied').expect(403);
    expect(await settledRowsOf(db, 'fastify-denied')).toEqual([
      {
        action: 'item_unlocked',
        outcome: 'failure',
        metadata: expect.objectContaining({ route: '/items/:id/locked', statusCode: 403 }) as unknown,
      },
    ]);
  });
});
