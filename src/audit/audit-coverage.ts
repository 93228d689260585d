import { Inject, Injectable, Logger, type OnApplicationBootstrap, RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { deriveAction } from './audit-action';
import { type ResolvedAuditOptions } from './audit-options';
import { AUDIT_OPTIONS, AUDITED_METADATA } from './audit.constants';
import { nonHttpHandlers } from './non-http-handlers';

const MUTATING = new Set<RequestMethod>([
  RequestMethod.POST,
  RequestMethod.PUT,
  RequestMethod.PATCH,
  RequestMethod.DELETE,
  RequestMethod.ALL,
]);

/**
 * The coverage report: at start-up, one warning listing every mutating route without
 * `@Audited()` and the action it will be recorded under, and one listing the GraphQL, RPC and
 * WebSocket handlers, which the interceptor does not audit.
 *
 * @example
 * // WARN [AuditModule] 1 mutating route has no @Audited() action: POST /ndas/archive (NdasController.archive → ndas.archive)
 * // WARN [AuditModule] 1 handler outside HTTP is not audited (the interceptor records HTTP requests only; …): RPC NdasController.onSigned
 */
@Injectable()
export class AuditCoverage implements OnApplicationBootstrap {
  private readonly logger = new Logger('AuditModule');

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    @Inject(AUDIT_OPTIONS) private readonly options: ResolvedAuditOptions,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.options.auditHttp) return;
    const undecorated = this.undecoratedRoutes();
    if (undecorated.length > 0) {
      const noun = undecorated.length === 1 ? 'route has' : 'routes have';
      this.logger.warn(`${undecorated.length} mutating ${noun} no @Audited() action: ${undecorated.join('; ')}`);
    }
    const skipped = nonHttpHandlers(this.discovery, this.scanner);
    if (skipped.length > 0) {
      const noun = skipped.length === 1 ? 'handler outside HTTP is' : 'handlers outside HTTP are';
      this.logger.warn(
        `${skipped.length} ${noun} not audited (the interceptor records HTTP requests only; ` +
          `record their mutations with AuditService.log()): ${skipped.join('; ')}`,
      );
    }
  }

  /** `METHOD /path (Controller.handler → derived.action)` for each undecorated mutating route. */
  undecoratedRoutes(): string[] {
    const routes: string[] = [];
    for (const wrapper of this.discovery.getControllers()) {
      const { metatype, instance } = wrapper;
      if (!metatype || !instance) continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
      const base = String(Reflect.getMetadata(PATH_METADATA, metatype) ?? '');
      for (const name of this.scanner.getAllMethodNames(prototype)) {
        const handler = prototype[name] as object;
        const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
        if (method === undefined || !MUTATING.has(method) || Reflect.getMetadata(AUDITED_METADATA, handler)) continue;
        const path = `/${[base, String(Reflect.getMetadata(PATH_METADATA, handler) ?? '')].join('/')}`
          .replace(/\/+/g, '/')
          .replace(/(.)\/$/, '$1');
        routes.push(`${RequestMethod[method]} ${path} (${metatype.name}.${name} → ${deriveAction(metatype.name, name)})`);
      }
    }
    return routes;
  }
}
