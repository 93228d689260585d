import { ConfigurableModuleBuilder, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { getRepositoryToken, TypeOrmModule } from '@nestjs/typeorm';
import { AuditLog } from './audit-log.entity';
import { type AuditModuleOptions } from './audit-options';
import { AUDIT_REPOSITORY } from './audit.constants';

/** Options fixed when the module is imported, also for `forRootAsync`. */
export interface AuditModuleExtras {
  /** Name of the TypeORM DataSource that holds `audit_log`; the default DataSource when absent. */
  dataSource?: string;
  /** Make `AuditService` and `DbHealthIndicator` injectable everywhere (default true). */
  isGlobal?: boolean;
}

export const {
  ConfigurableModuleClass: AuditConfigurableModule,
  MODULE_OPTIONS_TOKEN: AUDIT_MODULE_OPTIONS,
  OPTIONS_TYPE: AUDIT_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: AUDIT_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<AuditModuleOptions>({ moduleName: 'Audit' })
  .setClassMethodName('forRoot')
  // Every extra is listed, so that forRoot() keeps it out of the options it validates.
  .setExtras<AuditModuleExtras>({ isGlobal: true, dataSource: undefined }, (definition, extras) => {
    const repository: Provider = { provide: AUDIT_REPOSITORY, useExisting: getRepositoryToken(AuditLog, extras.dataSource) };
    return {
      ...definition,
      global: extras.isGlobal,
      imports: [...(definition.imports ?? []), TypeOrmModule.forFeature([AuditLog], extras.dataSource), TerminusModule, DiscoveryModule],
      providers: [...(definition.providers ?? []), repository],
    };
  })
  .build();
