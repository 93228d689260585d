import { type ExecutionContext, Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { INTERCEPTORS_METADATA } from '@nestjs/common/constants';
import { Reflector } from '@nestjs/core';
import { type AuditContext, takeEntityChanges } from '../audit-context';
import { deriveAction } from '../audit-action';
import { type ResolvedAuditOptions } from '../audit-options';
import { AUDIT_OPTIONS, AUDITED_METADATA, MUTATING_METHODS } from '../audit.constants';
import { AuditService } from '../audit.service';
import { type AuditedMetadata } from '../audited.decorator';
import { AuditedRequest, type RequestOutcome } from './audited-request';
import { UnfinishedRequests } from './unfinished-requests';
import { handlesResponse, header, type HttpRequest, rawResponseOf, requestOf, routeOf } from './http-request';

/**
 * Keeps one {@link AuditedRequest} per mutating HTTP request (shared by the audit guard and the
 * interceptor) and turns it into the entry given to `AuditService.log()`.
 *
 * @example
 * const tracked = recorder.track(context); // undefined for GET, HEAD, OPTIONS without @Audited()
 */
@Injectable()
export class AuditHttpRecorder implements OnModuleDestroy {
  /**
   * Where a request keeps its tracker: a property of this recorder's own symbol, not enumerable.
   * Not a WeakMap: the tracker holds the request, and a WeakMap's value is held through the young
   * generation's collections, so every request (and its response) would be promoted and freed
   * only by a full collection.
   */
  private readonly slot = Symbol('auditTracked');
  /** Trackers of requests that take no new property (frozen, sealed). */
  private readonly sealed = new WeakMap<object, AuditedRequest>();
  /** What each route's rows take from its controller and handler, read at its first request. */
  private readonly routes = new WeakMap<object, Map<object, RouteFacts>>();
  /** Requests in flight, each with its deadline. */
  private readonly unfinished: UnfinishedRequests;

  constructor(
    private readonly reflector: Reflector,
    private readonly audit: AuditService,
    @Inject(AUDIT_OPTIONS) private readonly options: ResolvedAuditOptions,
  ) {
    this.unfinished = new UnfinishedRequests(options.unfinishedAfterMs);
  }

  /** The request's tracker, made by whichever of the guard and the interceptor sees it first. */
  track(context: ExecutionContext): AuditedRequest | undefined {
    if (!this.options.auditHttp || context.getType() !== 'http') return undefined;
    const request = requestOf(context);
    // An explicit @Audited() asks for a row whatever the method: a GET unsubscribe link, the HEAD Express routes to it.
    if (!MUTATING_METHODS.has(request.method) && !this.route(context).meta) return undefined;
    // Fastify hands guards and interceptors the same wrapper, but Node's request is the stable key.
    const key = (request.raw ?? request) as Record<symbol, AuditedRequest | undefined>;
    let tracked = key[this.slot] ?? this.sealed.get(key);
    if (!tracked) {
      tracked = new AuditedRequest(context, rawResponseOf(context), (done, outcome) => this.write(done, outcome), this.unfinished);
      if (this.options.mode === 'sync' && !this.route(context).sendsResponse) tracked.holdResponse();
      if (Object.isExtensible(key)) Object.defineProperty(key, this.slot, { value: tracked });
      else this.sealed.set(key, tracked);
    }
    return tracked;
  }

  /**
   * Before the audit service drains at shutdown: the requests in flight get `writeTimeoutMs` (at
   * most `unfinishedAfterMs`) to end on their own; each still in flight then is recorded now as
   * `unfinished`, rather than dropped with the drained buffer.
   */
  async onModuleDestroy(): Promise<void> {
    await this.unfinished.giveUpAll(Math.min(this.options.writeTimeoutMs, this.options.unfinishedAfterMs));
  }

  /**
   * Whether the route binds interceptors of its own (`@UseInterceptors()` on its controller or
   * handler). They run inside the audit interceptor: one that runs the handler again (rxjs
   * `retry()`) does so without the audit interceptor seeing it, so a `record()` row committed on
   * such a route does not stand in for the request's row.
   */
  bindsInterceptors(context: ExecutionContext): boolean {
    return this.route(context).innerInterceptors;
  }

  /** Logs the request's entry; never rejects. */
  write(tracked: AuditedRequest, outcome: RequestOutcome): Promise<void> {
    const { context } = tracked;
    const request = requestOf(context);
    const { meta, action, entityType } = this.route(context);
    const error = outcome.error as { name?: unknown; message?: unknown } | undefined;
    return this.audit.log({
      action,
      entityType,
      entityId: asId(safely(() => entityId(meta, request, outcome.result))),
      // Passed as it is: normalize() keeps a string, number or bigint and refuses anything else, once with a warning.
      userId: safely(() => this.options.userIdFrom(request)),
      outcome: outcome.outcome,
      ip: request.ip ?? request.socket?.remoteAddress,
      userAgent: header(request, 'user-agent'),
      requestId: header(request, 'x-request-id'),
      changes: changesOf(request, tracked.scope),
      metadata: {
        method: request.method,
        route: routeOf(request),
        params: request.params,
        statusCode: outcome.statusCode,
        durationMs: Math.round((performance.now() - tracked.startedAt) * 10) / 10,
        ...(outcome.reason ? { reason: outcome.reason } : {}),
        ...(error ? { error: { name: error.name, message: error.message } } : {}),
      },
    });
  }

  /** The route's `@Audited` metadata, action, entity type and whether it sends its own response: reflection once per controller and handler, not per request. */
  private route(context: ExecutionContext): RouteFacts {
    const controller = context.getClass();
    const handler = context.getHandler();
    let handlers = this.routes.get(controller);
    if (!handlers) this.routes.set(controller, (handlers = new Map()));
    let facts = handlers.get(handler);
    if (!facts) {
      const meta = this.reflector.getAllAndOverride<AuditedMetadata | undefined>(AUDITED_METADATA, [handler, controller]);
      facts = {
        meta,
        action: meta?.action ?? deriveAction(controller.name, handler.name),
        entityType: meta?.entityType ?? controller.name.replace(/Controller$/, ''),
        sendsResponse: handlesResponse(context),
        innerInterceptors: this.reflector.getAllAndMerge<unknown[]>(INTERCEPTORS_METADATA, [handler, controller]).length > 0,
      };
      handlers.set(handler, facts);
    }
    return facts;
  }
}

/** What a route's rows take from its controller and handler. */
interface RouteFacts {
  meta: AuditedMetadata | undefined;
  action: string;
  entityType: string;
  /** The handler sends the response itself (`@Res()`, `@Next()`): see {@link handlesResponse}. */
  sendsResponse: boolean;
  /** `@UseInterceptors()` on the controller or handler: those run inside the audit interceptor and may run the handler again unseen. */
  innerInterceptors: boolean;
}

/** What the client sent (not for DELETE), and the entity changes the request committed, if any. */
function changesOf(request: HttpRequest, scope: AuditContext): unknown {
  const body = request.method === 'DELETE' ? undefined : { body: request.body };
  const entities = takeEntityChanges(scope);
  return entities ? { ...body, ...entities } : body;
}

function entityId(meta: AuditedMetadata | undefined, request: HttpRequest, result: unknown): unknown {
  const source = meta?.entityId;
  const field = (value: unknown, key: string) =>
    value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
  if (typeof source === 'function') return source({ request, result });
  if (source && 'param' in source) return request.params?.[source.param];
  if (source && 'result' in source) return field(result, source.result);
  return request.params?.id ?? field(result, 'id');
}

function asId(value: unknown): string | number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' || typeof value === 'string') return value;
  return typeof value === 'object' ? safely(() => JSON.stringify(value)) : String(value);
}

/** A user-supplied extractor that throws must not cost the entry. */
function safely<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}
