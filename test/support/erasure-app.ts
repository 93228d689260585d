import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule, type AuditModuleOptions } from '../../src/audit';
import { partitionsChecked } from './app';

/**
 * A small app with the audit module on `url`, as the least-privilege writer of
 * `createAuditDatabase` (migrations run by the owner already, found in `audit_migrations`), with
 * integrity on (sealing by `sealNow()` alone unless `audit` says otherwise). Returns once the
 * module's first partition check is over: start-up waits for it at most `writeTimeoutMs`, and a
 * row written before it of a month without a partition yet goes to the default partition.
 */
export async function startErasureApp(url: string, audit: AuditModuleOptions = {}): Promise<INestApplication> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url,
        entities: [AuditLog],
        migrations: [...AUDIT_MIGRATIONS],
        migrationsTableName: 'audit_migrations',
        migrationsRun: true,
      }),
      AuditModule.forRoot({ auditHttp: false, ...audit, integrity: { enabled: true, intervalMs: 3_600_000, ...audit.integrity } }),
    ],
  })
  class ErasureAppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [ErasureAppModule] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  await partitionsChecked(app);
  return app;
}
