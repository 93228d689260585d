import { type INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuditLog, AuditModule, CreateAuditLog1732700000000 } from '../../src/audit';

/** Pool size of every path (pg Pool `max`, TypeORM `extra.max`): the example app's audit pool. */
export const POOL = 10;

/**
 * The module as a user runs it, without HTTP: `TypeOrmModule.forRoot` (pool {@link POOL}, the
 * module's migration) and `AuditModule.forRoot({ auditHttp: false, ...audit })`.
 *
 * @example
 * const app = await auditContext(url, { retryBackoffMs: 100 });
 * const service = app.get(AuditService);
 */
export function auditContext(url: string, audit: Parameters<typeof AuditModule.forRoot>[0] = {}): Promise<INestApplicationContext> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url,
        entities: [AuditLog],
        migrations: [CreateAuditLog1732700000000],
        migrationsRun: true,
        extra: { max: POOL, connectionTimeoutMillis: 2000 },
      }),
      AuditModule.forRoot({ auditHttp: false, ...audit }),
    ],
  })
  class BenchAuditModule {}
  return NestFactory.createApplicationContext(BenchAuditModule, { logger: false, abortOnError: false });
}
