import { Logger, Module } from '@nestjs/common';
import { APP_INTERCEPTOR, ModuleRef } from '@nestjs/core';
import { AuditBuffer } from './audit-buffer';
import { AuditCoverage } from './audit-coverage';
import { DbHealthIndicator } from './audit-db.health';
import { EntityChangeSubscriber } from './diffs';
import { resolveAuditOptions, type ResolvedAuditOptions } from './audit-options';
import { AUDIT_OPTIONS } from './audit.constants';
import { AuditInterceptor } from './audit.interceptor';
import { AUDIT_MODULE_OPTIONS, AuditConfigurableModule } from './audit.module-definition';
import { AuditService } from './audit.service';
import { AuditGateGuard, AuditHttpRecorder, putFirstAmongGlobalGuards } from './http';
import { AuditQueryService } from './query';
import { AuditSealer } from './integrity/audit-sealer';
import { AuditSealerConnection } from './integrity/sealer-connection';
import { AuditPartitions } from './lifecycle/audit-partitions';
import { AuditRetention } from './lifecycle/audit-retention';
import { RingBuffer } from './ring-buffer';
import { AuditReporter, ConsoleSink, SentryReporter } from './sinks';
import { AuditSpool, FileSpool } from './spool';

/**
 * Failsafe audit logging: `AuditService`, the ring buffer, the stderr and Sentry sinks, the
 * `audit_db` health indicator, and a global interceptor that audits every mutating request.
 * Register {@link AuditLog} with the DataSource (or use `autoLoadEntities`) and run the migration.
 *
 * @example
 * @Module({
 *   imports: [
 *     TypeOrmModule.forRoot({ type: 'postgres', url, autoLoadEntities: true, migrations: [...AUDIT_MIGRATIONS], migrationsRun: true }),
 *     AuditModule.forRoot({ userIdFrom: (req) => req.user?.id }),
 *   ],
 * })
 * export class AppModule {}
 */
@Module({
  providers: [
    { provide: AUDIT_OPTIONS, useFactory: resolveAuditOptions, inject: [AUDIT_MODULE_OPTIONS] },
    {
      provide: AuditBuffer,
      useFactory: (options: ResolvedAuditOptions) => new RingBuffer({ capacity: options.bufferSize, maxBytes: options.bufferMaxBytes }),
      inject: [AUDIT_OPTIONS],
    },
    {
      provide: AuditSpool,
      useFactory: (options: ResolvedAuditOptions) =>
        options.spoolDir
          ? FileSpool.open(options.spoolDir, {
              maxBytes: options.spoolMaxBytes,
              segmentBytes: options.spoolSegmentBytes,
              timeoutMs: options.writeTimeoutMs,
            })
          : null,
      inject: [AUDIT_OPTIONS],
    },
    { provide: AuditReporter, useClass: SentryReporter },
    {
      provide: ConsoleSink,
      useFactory: (options: ResolvedAuditOptions) => new ConsoleSink(options.bufferMaxBytes),
      inject: [AUDIT_OPTIONS],
    },
    EntityChangeSubscriber,
    AuditService,
    AuditSealerConnection,
    AuditSealer,
    AuditPartitions,
    AuditRetention,
    DbHealthIndicator,
    AuditHttpRecorder,
    {
      provide: AuditGateGuard,
      useFactory: (recorder: AuditHttpRecorder, moduleRef: ModuleRef, options: ResolvedAuditOptions) => {
        const gate = new AuditGateGuard(recorder);
        if (options.auditHttp && !putFirstAmongGlobalGuards(moduleRef, gate)) {
          new Logger('AuditModule').warn('Could not place the audit guard first: requests refused by a guard will not be audited');
        }
        return gate;
      },
      inject: [AuditHttpRecorder, ModuleRef, AUDIT_OPTIONS],
    },
    AuditInterceptor,
    AuditCoverage,
    { provide: APP_INTERCEPTOR, useExisting: AuditInterceptor },
    AuditQueryService,
  ],
  exports: [AuditService, DbHealthIndicator, AuditBuffer, AuditSpool, AuditQueryService, AuditSealer, AuditPartitions, AuditRetention],
})
export class AuditModule extends AuditConfigurableModule {}
