import {
  type CallHandler,
  type CanActivate,
  type ExecutionContext,
  Injectable,
  type NestInterceptor,
  RequestTimeoutException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { catchError, Observable, throwError, timeout, TimeoutError } from 'rxjs';
import { type TestPostgres } from './postgres';

/** What a test reads back from `audit_log` for one request. */
export interface CapturedRow {
  action: string;
  outcome: string;
  metadata: { statusCode: number; route: string; reason?: string };
}

/** Marks a handler for {@link TimeoutInterceptor}: it times out after this many ms. */
export const TIMEOUT_MS = 'test:timeout-ms';

/**
 * The NestJS docs' TimeoutInterceptor, limited to handlers marked with {@link TIMEOUT_MS}. Bound in
 * the root module with APP_INTERCEPTOR, it wraps the audit interceptor and unsubscribes from it.
 */
@Injectable()
export class TimeoutInterceptor implements NestInterceptor {
  constructor(private readonly reflector: Reflector) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const ms = this.reflector.get<number | undefined>(TIMEOUT_MS, context.getHandler());
    if (ms === undefined) return next.handle();
    return next.handle().pipe(
      timeout(ms),
      catchError((error: unknown) => throwError(() => (error instanceof TimeoutError ? new RequestTimeoutException() : error))),
    );
  }
}

/** A root-module guard that refuses any request carrying `x-deny`, as an auth guard would. */
@Injectable()
export class DenyHeaderGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return context.switchToHttp().getRequest<{ headers: Record<string, unknown> }>().headers['x-deny'] === undefined;
  }
}

/** A gate a handler waits on until the test opens it. */
export class Gate {
  private opened!: () => void;
  readonly passed = new Promise<void>((resolve) => (this.opened = resolve));

  open(): void {
    this.opened();
  }
}

/** The audit rows of one request, found by its `x-request-id`. */
export function rowsOf(db: TestPostgres, requestId: string): Promise<CapturedRow[]> {
  return db.query<CapturedRow>('SELECT action, outcome, metadata FROM audit_log WHERE request_id = $1 ORDER BY occurred_at', [requestId]);
}

/**
 * Waits until the request has a row, then a little longer, and returns all its rows: a second
 * row written late would show up here.
 */
export async function settledRowsOf(db: TestPostgres, requestId: string): Promise<CapturedRow[]> {
  const deadline = Date.now() + 10_000;
  while ((await rowsOf(db, requestId)).length === 0 && Date.now() < deadline) await pause(50);
  await pause(300);
  return rowsOf(db, requestId);
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
