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
import { catchError, concatWith, defer, ignoreElements, Observable, tap } from 'rxjs';
import { runInAuditContext } from './audit-context';
import { type AuditOutcome } from './audit-entry';
import { type ResolvedAuditOptions } from './audit-options';
import { AUDIT_OPTIONS } from './audit.constants';
import { AuditHttpRecorder, handlesResponse } from './http';

/**
 * Audits every POST, PUT, PATCH and DELETE handled by a controller, exactly once per request, on
 * success, on failure and when an outer interceptor cancels it (outcome `failure`, `reason:
 * 'cancelled'`). In async mode the entry is logged once the response has gone out, with the
 * status the client got; in sync mode the response waits until the entry is durable (never
 * failing because of the audit), except for handlers that send the response themselves
 * (`@Res()`), cancelled requests and Observables that complete empty, which are recorded when
 * the response has gone out. A request whose handler wrote its own row with
 * `AuditService.record()` gets no second one. Registered globally by `AuditModule`.
 *
 * @example
 * // Registered for you; disable it with AuditModule.forRoot({ auditHttp: false }).
 */
@Injectable()
export class AuditInterceptor implements NestInterceptor {
  constructor(
    private readonly reflector: Reflector,
    private readonly recorder: AuditHttpRecorder,
    @Inject(AUDIT_OPTIONS) private readonly options: ResolvedAuditOptions,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const tracked = this.recorder.track(context);
    if (!tracked) return next.handle();
    tracked.begin();
    const successCode =
      this.reflector.get<number | undefined>(HTTP_CODE_METADATA, context.getHandler()) ??
      (context.switchToHttp().getRequest<{ method: string }>().method === 'POST' ? HttpStatus.CREATED : HttpStatus.OK);
    const writesBeforeResponse = this.options.mode === 'sync' && !handlesResponse(context);
    const requestContext = tracked.scope;
    let last: { value: unknown } | undefined;
    let ended = false;

    const end = async (outcome: AuditOutcome, error?: unknown): Promise<void> => {
      ended = true;
      const result = last?.value;
      const { recordedAtomically } = requestContext;
      // Nest answers an Observable that completes empty itself: its status is known only at the response.
      const knowsStatus = outcome === 'failure' || last !== undefined;
      if (writesBeforeResponse && knowsStatus && tracked.claim()) {
        if (outcome === 'success' && recordedAtomically) return;
        const statusCode = outcome === 'success' ? successCode : failureCode(error);
        // log() never rejects, so waiting for it never fails the request.
        await this.recorder.write(tracked, { outcome, statusCode, result, error });
        return;
      }
      tracked.observe({ kind: 'settled', outcome, result, error, recordedAtomically });
    };

    return new Observable<unknown>((subscriber) => {
      let subscription: { unsubscribe(): void } | undefined;
      // The handler runs when subscribed to: subscribing inside the context lets AuditService.record() mark it.
      runInAuditContext(requestContext, () => {
        subscription = next
          .handle()
          .pipe(
            tap((value) => (last = { value })),
            concatWith(defer(() => end('success')).pipe(ignoreElements())),
            catchError(async (error: unknown) => {
              if (!ended) await end('failure', error);
              throw error;
            }),
          )
          .subscribe(subscriber);
      });
      return () => {
        subscription?.unsubscribe();
        if (!ended) tracked.observe({ kind: 'cancelled' });
      };
    });
  }
}

function failureCode(error: unknown): number {
  return error instanceof HttpException ? error.getStatus() : HttpStatus.INTERNAL_SERVER_ERROR;
}
