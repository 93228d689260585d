import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor, Optional } from '@nestjs/common';
import { ApplicationConfig } from '@nestjs/core';
import { Observable } from 'rxjs';
import { runInAuditContext } from './audit-context';
import { type AuditOutcome } from './audit-entry';
import { AuditHttpRecorder } from './http';

/**
 * Audits every POST, PUT, PATCH and DELETE handled by a controller, and every request to an
 * `@Audited` handler whatever its method, exactly once per request, on
 * success, on failure and when an outer interceptor cancels it (outcome `failure`, `reason:
 * 'cancelled'`). It runs the handler inside the request's audit context and notes how the handler
 * ended; the row is made once every interceptor around it is done, with the status the client
 * got and the entity changes that committed: in async mode once the response has gone out, in
 * sync mode when the response is ended, whose last bytes then wait until the row is durable
 * (never failing because of the audit). Handlers that send the response themselves (`@Res()`)
 * are recorded once both the handler and the response are done. A request whose handler wrote
 * its own row with `AuditService.record()` gets no second one, if that row committed, unless
 * another interceptor runs inside this one (bound on the route, or global and registered after it):
 * such an interceptor may run the handler again unseen (rxjs `retry()`), so the request keeps its
 * own row beside the `record()` row. A client
 * that goes away does not end the request (its row waits for the response to be ended, at most
 * `unfinishedAfterMs`), and of a request an outer interceptor retries, the last attempt counts.
 * Registered globally by `AuditModule`.
 *
 * @example
 * // Registered for you; disable it with AuditModule.forRoot({ auditHttp: false }).
 */
@Injectable()
export class AuditInterceptor implements NestInterceptor {
  constructor(
    private readonly recorder: AuditHttpRecorder,
    /** Nest's global interceptors: those after this one run inside it. */
    @Optional() private readonly config?: ApplicationConfig,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const tracked = this.recorder.track(context);
    if (!tracked) return next.handle();
    const attempt = tracked.begin(this.recorder.bindsInterceptors(context) || this.globalsInside());
    let last: { value: unknown } | undefined;
    let ended = false;

    const end = (outcome: AuditOutcome, error?: unknown): void => {
      ended = true;
      tracked.observe({ kind: 'settled', outcome, result: last?.value, error });
    };

    return new Observable<unknown>((subscriber) => {
      let subscription: { unsubscribe(): void } | undefined;
      // The handler runs when subscribed to: inside the context, record() rows and entity changes find the request.
      // One observer instead of operators: this runs for every audited request.
      runInAuditContext(attempt, () => {
        subscription = next.handle().subscribe({
          next: (value) => {
            last = { value };
            subscriber.next(value);
          },
          error: (error: unknown) => {
            if (!ended) end('failure', error);
            subscriber.error(error);
          },
          complete: () => {
            end('success');
            subscriber.complete();
          },
        });
      });
      return () => {
        subscription?.unsubscribe();
        if (!ended) tracked.observe({ kind: 'cancelled' });
      };
    });
  }

  /** Whether a global interceptor runs inside this one: one registered after it, or one of request scope (those come after the rest). */
  private globalsInside(): boolean {
    const config = this.config;
    if (!config) return false;
    const globals = config.getGlobalInterceptors();
    const at = globals.indexOf(this);
    return (at < 0 ? globals.length > 0 : at < globals.length - 1) || config.getGlobalRequestInterceptors().length > 0;
  }
}
