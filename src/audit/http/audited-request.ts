import { type ExecutionContext } from '@nestjs/common';
import { newAuditContext } from '../audit-context';
import { type AuditOutcome } from '../audit-entry';
import { type RawResponse } from './http-request';

/** What the interceptor saw of the handler: how it ended, or that it was cancelled. */
export type HandlerObservation =
  { kind: 'settled'; outcome: AuditOutcome; result?: unknown; error?: unknown; recordedAtomically: boolean } | { kind: 'cancelled' };

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
 * recorded exactly once: by the interceptor before the response (sync mode), or else when the
 * response has gone out and the handler, if it ran, has ended, with the status the client got.
 *
 * @example
 * const tracked = new AuditedRequest(context, rawResponseOf(context), (request, outcome) => void recorder.write(request, outcome));
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
    private readonly write: (request: AuditedRequest, outcome: RequestOutcome) => void,
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

  /** Takes the right to record this request now; false when it is already recorded. */
  claim(): boolean {
    if (this.recorded) return false;
    this.recorded = true;
    return true;
  }

  /** The handler ended or was cancelled; the first observation counts. */
  observe(observation: HandlerObservation): void {
    this.observation ??= observation;
    this.recordIfDone();
  }

  private recordIfDone(): void {
    if (this.recorded || !this.responseEnded || (this.handling && !this.observation)) return;
    this.recorded = true;
    const outcome = this.outcome();
    if (outcome) this.write(this, outcome);
  }

  private outcome(): RequestOutcome | undefined {
    const statusCode = this.response.statusCode;
    const failed = statusCode >= 400;
    const reason = this.response.writableFinished ? undefined : 'client_closed';
    const seen = this.observation;
    if (seen?.kind === 'cancelled') return { outcome: 'failure', statusCode, reason: 'cancelled' };
    if (seen?.outcome === 'success' && !failed && seen.recordedAtomically) return undefined;
    const outcome = seen?.outcome === 'failure' || failed ? 'failure' : 'success';
    return { outcome, statusCode, result: seen?.result, error: seen?.error, ...(reason ? { reason } : {}) };
  }
}
