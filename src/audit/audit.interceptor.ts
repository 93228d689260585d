import {
  type CallHandler,
  type ExecutionContext,
  HttpException,
  HttpStatus,
  Inject,
  Injectable,
  type NestInterceptor,
} from '@nestjs/common';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants';
import { Reflector } from '@nestjs/core';
import { catchError, concatMap, Observable, tap } from 'rxjs';
import { deriveAction } from './audit-action';
import { runInAuditContext } from './audit-context';
import { type AuditOutcome } from './audit-entry';
import { type ResolvedAuditOptions } from './audit-options';
import { AUDIT_OPTIONS, AUDITED_METADATA, MUTATING_METHODS } from './audit.constants';
import { AuditService } from './audit.service';
import { type AuditedMetadata } from './audited.decorator';

/** The parts of an HTTP request the interceptor reads (Express and Fastify both provide them). */
interface HttpRequest {
  method: string;
  ip?: string;
  url?: string;
  route?: { path?: string };
  params?: Record<string, unknown>;
  body?: unknown;
  headers: Record<string, string | string[] | undefined>;
  socket?: { remoteAddress?: string };
}

/**
 * Audits every POST, PUT, PATCH and DELETE handled by a controller, after the handler, on success
 * and on failure. In async mode the response does not wait; in sync mode it waits until the entry
 * is durable (never failing because of the audit). A request whose handler wrote its own row with
 * `AuditService.record()` gets no second one. Registered globally by `AuditModule`.
 *
 * @example
 * // Registered for you; disable it with AuditModule.forRoot({ auditHttp: false }).
 */
@Injectable()
export class AuditInterceptor implements NestInterceptor {
  constructor(
    private readonly reflector: Reflector,
    private readonly audit: AuditService,
    @Inject(AUDIT_OPTIONS) private readonly options: ResolvedAuditOptions,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (!this.options.auditHttp || context.getType() !== 'http') return next.handle();
    const request = context.switchToHttp().getRequest<HttpRequest>();
    if (!MUTATING_METHODS.has(request.method)) return next.handle();

    const started = performance.now();
    const successCode =
      this.reflector.get<number | undefined>(HTTP_CODE_METADATA, context.getHandler()) ??
      (request.method === 'POST' ? HttpStatus.CREATED : HttpStatus.OK);
    let requestContext = { recordedAtomically: false };
    // The handler runs when subscribed to: subscribing inside the context lets AuditService.record() mark it.
    const handled = new Observable<unknown>((subscriber) => {
      let subscription: { unsubscribe(): void } | undefined;
      requestContext = runInAuditContext(() => (subscription = next.handle().subscribe(subscriber)));
      return () => subscription?.unsubscribe();
    });
    const audit = (outcome: AuditOutcome, statusCode: number, result?: unknown, error?: unknown): Promise<void> => {
      if (outcome === 'success' && requestContext.recordedAtomically) return Promise.resolve();
      return this.record(context, request, { outcome, statusCode, result, error, durationMs: performance.now() - started });
    };
    const failureCode = (error: unknown) => (error instanceof HttpException ? error.getStatus() : HttpStatus.INTERNAL_SERVER_ERROR);

    if (this.options.mode === 'sync') {
      // The response waits until the entry is durable; log() never rejects, so it never fails the request.
      return handled.pipe(
        concatMap(async (result) => {
          await audit('success', successCode, result);
          return result;
        }),
        catchError(async (error: unknown) => {
          await audit('failure', failureCode(error), undefined, error);
          throw error;
        }),
      );
    }
    let audited = false;
    const once = (outcome: AuditOutcome, statusCode: number, result?: unknown, error?: unknown) => {
      if (audited) return;
      audited = true;
      void audit(outcome, statusCode, result, error);
    };
    return handled.pipe(
      tap({
        next: (result) => once('success', successCode, result),
        complete: () => once('success', successCode),
        error: (error: unknown) => once('failure', failureCode(error), undefined, error),
      }),
    );
  }

  private record(
    context: ExecutionContext,
    request: HttpRequest,
    outcome: { outcome: AuditOutcome; statusCode: number; result?: unknown; error?: unknown; durationMs: number },
  ): Promise<void> {
    const meta = this.reflector.getAllAndOverride<AuditedMetadata | undefined>(AUDITED_METADATA, [
      context.getHandler(),
      context.getClass(),
    ]);
    const controller = context.getClass().name;
    const error = outcome.error as { name?: unknown; message?: unknown } | undefined;
    return this.audit.log({
      action: meta?.action ?? deriveAction(controller, context.getHandler().name),
      entityType: meta?.entityType ?? controller.replace(/Controller$/, ''),
      entityId: asId(safely(() => entityId(meta, request, outcome.result))),
      userId: asId(safely(() => this.options.userIdFrom(request))),
      outcome: outcome.outcome,
      ip: request.ip ?? request.socket?.remoteAddress,
      userAgent: header(request, 'user-agent'),
      requestId: header(request, 'x-request-id'),
      changes: request.method === 'DELETE' ? undefined : { body: request.body },
      metadata: {
        method: request.method,
        route: request.route?.path ?? request.url,
        params: request.params,
        statusCode: outcome.statusCode,
        durationMs: Math.round(outcome.durationMs * 10) / 10,
        ...(error ? { error: { name: error.name, message: error.message } } : {}),
      },
    });
  }
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

function header(request: HttpRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** A user-supplied extractor that throws must not cost the entry. */
function safely<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}
