import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, type AuditModuleOptions } from '../../src/audit';

/** The first instant of the month `months` after this one, UTC. */
export function monthStart(months: number): Date {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + months, 1));
}

/** `audit_log_pYYYY_MM`, the partition of the month `date` falls in. */
export function monthPartition(date: Date): string {
  return `audit_log_p${date.toISOString().slice(0, 7).replace('-', '_')}`;
}

/**
 * The module alone on `url`, in sync mode (a write resolves once committed) without the HTTP
 * interceptor, `migrations` run at start (default: all of them) and recorded in `audit_migrations`.
 */
export async function startPartitionsApp(
  url: string,
  audit: AuditModuleOptions = {},
  migrations: readonly (typeof AUDIT_MIGRATIONS)[number][] = AUDIT_MIGRATIONS,
): Promise<INestApplication> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url,
        entities: [AuditLog],
        migrations: [...migrations],
        migrationsTableName: 'audit_migrations',
        migrationsRun: true,
      }),
      AuditModule.forRoot({ auditHttp: false, mode: 'sync', ...audit }),
    ],
  })
  class PartitionsAppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [PartitionsAppModule] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}
