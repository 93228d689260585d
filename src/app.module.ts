import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';
import { SentryGlobalFilter, SentryModule } from '@sentry/nestjs/setup';
import { AUDIT_MIGRATIONS, AuditLog, AuditModule } from './audit';
import { APP_CONFIG, AppConfigModule } from './app-config.module';
import { AuditReaderGuard } from './audit-reader.guard';
import { type AppConfig, ConfigError } from './config';
import { HealthController } from './health/health.controller';
import { CreateNda1732700000001 } from './ndas/create-nda.migration';
import { Nda } from './ndas/nda.entity';
import { NdasModule } from './ndas/ndas.module';

/** The audit table has a DataSource (and pool) of its own, in the NDA database or another one. */
export const AUDIT_DATA_SOURCE = 'audit';

function databaseUrl(config: AppConfig): string {
  if (!config.databaseUrl)
    throw new ConfigError('Environment variable DATABASE_URL is required (npm start starts an embedded PostgreSQL when it is unset)');
  return config.databaseUrl;
}

@Module({
  imports: [
    AppConfigModule,
    SentryModule.forRoot(),
    TypeOrmModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        type: 'postgres',
        url: databaseUrl(config),
        entities: [Nda],
        migrations: [CreateNda1732700000001],
        migrationsRun: true,
      }),
    }),
    TypeOrmModule.forRootAsync({
      name: AUDIT_DATA_SOURCE,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        // Repeated here: the core module reads the name from the factory's result at shutdown.
        name: AUDIT_DATA_SOURCE,
        type: 'postgres',
        url: config.auditDatabaseUrl ?? databaseUrl(config),
        entities: [AuditLog],
        migrations: [...AUDIT_MIGRATIONS],
        migrationsTableName: 'audit_migrations',
        migrationsRun: true,
        // The app starts while the audit database is unreachable: AuditModule connects it (and
        // runs the migration) in the background, buffering entries meanwhile.
        manualInitialization: true,
        extra: { max: 10, connectionTimeoutMillis: 5000 },
      }),
    }),
    AuditModule.forRootAsync({
      dataSource: AUDIT_DATA_SOURCE,
      // GET /audit…, for requests that carry the auditor token (AUDIT_HTTP_TOKEN), and the
      // audit viewer at /audit/ui (a browser sends the token as the password of HTTP Basic).
      http: { guard: AuditReaderGuard, viewer: true },
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        ...config.audit,
        userIdFrom: (request) => {
          const user = request.headers['x-user-id'];
          return Array.isArray(user) ? user[0] : user;
        },
      }),
    }),
    TerminusModule,
    NdasModule,
  ],
  controllers: [HealthController],
  providers: [{ provide: APP_FILTER, useClass: SentryGlobalFilter }],
})
export class AppModule {}
