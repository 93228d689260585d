import { ConfigurableModuleBuilder, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { getRepositoryToken, TypeOrmModule } from '@nestjs/typeorm';
import { AuditLog } from './audit-log.entity';
import { type AuditHttpOptions, type AuditModuleOptions, resolveAuditHttpOptions } from './audit-options';
import { AUDIT_REPOSITORY } from './audit.constants';
import { auditQueryController } from './query/audit-query.controller';
import { auditViewerController } from './viewer/audit-viewer.controller';

/**
 * Options fixed when the module is imported, also for `forRootAsync`.
 *
 * @example
 * AuditModule.forRootAsync({ dataSource: 'audit', isGlobal: true, useFactory: () => ({ mode: 'sync' as const }) });
 */
export interface AuditModuleExtras {
  /** Name of the TypeORM DataSource that holds `audit_log`; the default DataSource when absent. */
  dataSource?: string;
  /** Make `AuditService` and `DbHealthIndicator` injectable everywhere (default true). */
  isGlobal?: boolean;
  /** Serve the trail read-only over HTTP behind `guard` (off by default); see {@link AuditHttpOptions}. */
  http?: AuditHttpOptions;
}

export const {
  ConfigurableModuleClass: AuditConfigurableModule,
  MODULE_OPTIONS_TOKEN: AUDIT_MODULE_OPTIONS,
  OPTIONS_TYPE: AUDIT_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: AUDIT_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<AuditModuleOptions>({ moduleName: 'Audit' })
  .setClassMethodName('forRoot')
  // Every extra is listed, so that forRoot() keeps it out of the options it validates.
  .setExtras<AuditModuleExtras>({ isGlobal: true, dataSource: undefined, http: undefined }, (definition, extras) => {
    const repository: Provider = { provide: AUDIT_REPOSITORY, useExisting: getRepositoryToken(AuditLog, extras.dataSource) };
    return withHttp(
      {
        ...definition,
        global: extras.isGlobal,
        imports: [...(definition.imports ?? []), TypeOrmModule.forFeature([AuditLog], extras.dataSource), TerminusModule, DiscoveryModule],
        providers: [...(definition.providers ?? []), repository],
      },
      extras.http,
    );
  })
  .build();

/**
 * Adds the guarded read controller when `http` is given, and the viewer's with `viewer: true`. A bad `http` (no guard, say) throws here,
 * in `forRoot()` / `forRootAsync()`: the app stops before anything starts, naming the key.
 */
function withHttp(definition: DynamicModule, http: unknown): DynamicModule {
  if (http === undefined) return definition;
  const resolved = resolveAuditHttpOptions(http);
  const controllers = [auditQueryController(resolved), ...(resolved.viewer ? [auditViewerController(resolved)] : [])];
  return { ...definition, controllers: [...(definition.controllers ?? []), ...controllers] };
}
