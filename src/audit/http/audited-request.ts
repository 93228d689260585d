import { type ExecutionContext } from '@nestjs/common';
import { newAuditContext, settleRecorded } from '../audit-context';
import { type AuditOutcome } from '../audit-entry';
import { type RawResponse } from './http-request';

/** What the interceptor saw of the handler: how it ended, or that it was cancelled. */
export type HandlerObservation = { kind: 'settled'; outcome: AuditOutcome; result?: unknown; error?: unknown } | { kind: 'cancelled' };

/** What is recorded for a request, once. */
export interface RequestOutcome {
  outcome: AuditOutcome;
  statusCode: number;
  result?: unknown;
  error?: unknown;
  /** Why a request that did not run its course is a failure. */
  reason?: 'cancelled' | 'client_closed';
}

/**
 * One mutating HTTP request on its way through Nest, from the first guard to its response. It is
 * recorded exactly once, with the status the client got, once the handler (if it ran) has ended
 * and every interceptor around it is done: when the response is ended (sync mode, see
 * {@link holdResponse}), or else when it has gone out. So the row carries what outer interceptors
 * committed, and whether a `record()` row committed in place of it.
 *
 * @example
 * const tracked = new AuditedRequest(context, rawResponseOf(context), (request, outcome) => recorder.write(request, outcome));
 * tracked.begin(); // the interceptor runs the handler…
 * tracked.observe({ kind: 'cancelled' }); // …an outer timeout gave up: recorded at the response as a cancelled failure
 */
export class AuditedRequest {
  readonly startedAt = performance.now();
  /** The context the handler runs in: whether it recorded its own row, the entity changes it committed. */
  readonly scope = newAuditContext('request');
  private handling = false;
  private observation: HandlerObservation | undefined;
  private responseEnded = false;
  private recorded = false;

  constructor(
    readonly context: ExecutionContext,
    private readonly response: RawResponse,
    private readonly write: (request: AuditedRequest, outcome: RequestOutcome) => Promise<void>,
  ) {
    const ended = () => {
      this.responseEnded = true;
      this.recordIfDone();
    };
    response.once('finish', ended);
    response.once('close', ended);
  }

  /** The interceptor has the request: wait for its observation before recording. */
  begin(): void {
    this.handling = true;
  }

  /**
   * Sync mode: the response's last bytes wait until the row is written (committed, or in the
   * spool; `log()` bounds the wait), and the row is made when the response is ended, after every
   * interceptor and exception filter, with the final status. A response ended before the handler
   * did (`@Res()`) is not held: it is recorded once the handler ends.
   */
  holdResponse(): void {
    const response = this.response;
    const end = response.end;
    let written: Promise<void> | undefined;
    response.end = (...args: unknown[]) => {
      written ??= this.recordAtEnd().then(() => {
        response.end = end;
      });
      // An end that throws (a bad chunk) would have thrown to its caller; here the response is destroyed instead.
      written.then(() => end.apply(response, args)).catch((error: unknown) => response.destroy(error as Error));
      return response;
    };
  }

  /** The handler ended or was cancelled; the first observation counts. */
  observe(observation: HandlerObservation): void {
    this.observation ??= observation;
    this.recordIfDone();
  }

  private recordIfDone(): void {
    if (this.recorded || !this.responseEnded || (this.handling && !this.observation)) return;
    void this.recordNow(this.response.writableFinished ? undefined : 'client_closed');
  }

  /** The response is being ended (and has not closed): record it now, unless the handler has not ended yet. */
  private recordAtEnd(): Promise<void> {
    if (this.recorded || this.responseEnded || (this.handling && !this.observation)) return Promise.resolve();
    return this.recordNow(undefined);
  }

  /** Never rejects, so that a held response is always let go. */
  private recordNow(closed: 'client_closed' | undefined): Promise<void> {
    this.recorded = true;
    this.scope.closed = true;
    try {
      const outcome = this.outcome(closed);
      if (outcome?.outcome === 'success' && this.scope.unsettled) return this.settleThenRecord(closed);
      return outcome ? this.write(this, outcome).catch(() => undefined) : Promise.resolve();
    } catch {
      return Promise.resolve();
    }
  }

  /** A `record()` row written in a transaction block TypeORM does not report stands for the request only if seen committed. */
  private async settleThenRecord(closed: 'client_closed' | undefined): Promise<void> {
    try {
      await settleRecorded(this.scope);
      const outcome = this.outcome(closed);
      if (outcome) await this.write(this, outcome);
    } catch {
      // Never rejects, as recordNow().
    }
  }

  private outcome(closed: 'client_closed' | undefined): RequestOutcome | undefined {
    const statusCode = this.response.statusCode;
    const failed = statusCode >= 400;
    const seen = this.observation;
    if (seen?.kind === 'cancelled') return { outcome: 'failure', statusCode, reason: 'cancelled' };
    // Read now, not when the handler ended: an outer interceptor may commit the record() row after it.
    if (seen?.outcome === 'success' && !failed && this.scope.recordedAtomically) return undefined;
    const outcome = seen?.outcome === 'failure' || failed ? 'failure' : 'success';
    return { outcome, statusCode, result: seen?.result, error: seen?.error, ...(closed ? { reason: closed } : {}) };
  }
}
