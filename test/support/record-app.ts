import { type INestApplication, Module, type Type } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule } from '../../src/audit';
import { type TestPostgres } from './postgres';

/**
 * An app in sync mode whose `controllers` write their own rows with `record()`, on a database
 * `database` of its own (created here, migrated at start), served by Express or by Fastify.
 */
export async function startRecordApp(
  db: TestPostgres,
  database: string,
  controllers: Type<unknown>[],
  platform: 'express' | 'fastify' = 'express',
): Promise<INestApplication<Server>> {
  await db.createDatabase(database);
  @Module({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url: db.url(database),
        entities: [AuditLog],
        migrations: [...AUDIT_MIGRATIONS],
        migrationsRun: true,
      }),
      AuditModule.forRoot({ mode: 'sync' }),
    ],
    controllers,
  })
  class RecordAppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [RecordAppModule] }).compile();
  if (platform === 'express') {
    const app = moduleRef.createNestApplication<INestApplication<Server>>({ logger: false });
    await app.listen(0, '127.0.0.1');
    return app;
  }
  const fastify = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
  await fastify.listen(0, '127.0.0.1');
  await fastify.getHttpAdapter().getInstance().ready();
  return fastify as unknown as INestApplication<Server>;
}
