import { type ExecutionContext } from '@nestjs/common';
import { type AuditContext, newAuditContext, settleRecorded } from '../audit-context';
import { type AuditOutcome } from '../audit-entry';
import { type RawResponse } from './http-request';
import { type UnfinishedRequest, type UnfinishedRequests } from './unfinished-requests';

/** What the interceptor saw of the handler: how it ended, or that it was cancelled. */
export type HandlerObservation = { kind: 'settled'; outcome: AuditOutcome; result?: unknown; error?: unknown } | { kind: 'cancelled' };

/** What is recorded for a request, once. */
export interface RequestOutcome {
  outcome: AuditOutcome;
  /** The status the client got; none for a request that never ended (`reason: 'unfinished'`). */
  statusCode: number | undefined;
  result?: unknown;
  error?: unknown;
  /** Why a request that did not run its course is recorded so. */
  reason?: 'cancelled' | 'client_closed' | 'unfinished';
}

/**
 * One mutating HTTP request on its way through Nest, from the first guard to its response. It is
 * recorded exactly once, with the status the client got, once the handler (if it ran) has ended
 * and every interceptor around it is done: when the response is ended (sync mode, see
 * {@link holdResponse}), or else when it has gone out. So the row carries what outer interceptors
 * committed, and whether a `record()` row committed in place of it. A client that goes away does
 * not end the request: its row still waits for the pipeline to end the response (and says
 * `client_closed`). A request without its row `unfinished.ms` after it began, its client still
 * there or not, is written then as an `unfinished` failure, and whatever the request does later
 * writes no row of its own (a `record()` row it commits later is a row of that transaction).
 *
 * @example
 * const tracked = new AuditedRequest(context, rawResponseOf(context), (request, outcome) => recorder.write(request, outcome), new UnfinishedRequests(60_000));
 * tracked.begin(); // the interceptor runs the handler…
 * tracked.observe({ kind: 'cancelled' }); // …an outer timeout gave up: recorded at the response as a cancelled failure
 */
export class AuditedRequest implements UnfinishedRequest {
  readonly startedAt = performance.now();
  /** The request's context: whether its handler recorded its own row, the entity changes it committed. */
  readonly scope = newAuditContext('request');
  /** The context of the attempt running now, inside {@link scope}: the handler runs in it. */
  private attempt: AuditContext | undefined;
  private handling = false;
  private observation: HandlerObservation | undefined;
  /** The response went out, or (its client gone) the pipeline ended it. */
  private responseEnded = false;
  /** The client went away before the response was finished. */
  private clientClosed = false;
  private held = false;
  private recorded = false;

  constructor(
    readonly context: ExecutionContext,
    private readonly response: RawResponse,
    private readonly write: (request: AuditedRequest, outcome: RequestOutcome) => Promise<void>,
    /** Where the request waits for its row, with its deadline (shared by the recorder's requests). */
    private readonly unfinished: UnfinishedRequests,
  ) {
    unfinished.begin(this);
    // One listener for both events, as before: a close without a finish is a client that left, not an end.
    const ended = () => {
      if (!response.writableFinished) return this.clientLeft();
      this.responseEnded = true;
      this.recordIfDone();
    };
    response.once('finish', ended);
    response.once('close', ended);
  }

  /**
   * The interceptor has the request (again, when an outer interceptor retries it): wait for this
   * attempt's observation, and run its handler in the context returned. The last attempt counts: a
   * `record()` row an earlier attempt committed, before this one began or after (its handler may
   * still be running), stands for that attempt only, so this one's row is decided afresh. With
   * `mayRunAgain` (an interceptor is bound on the route, inside the audit interceptor, and may run
   * the handler again unseen) a `record()` row of this attempt does not stand for the request.
   */
  begin(mayRunAgain = false): AuditContext {
    this.handling = true;
    this.observation = undefined;
    this.scope.recordedAtomically = false;
    this.scope.unsettled = undefined;
    if (this.attempt) this.attempt.superseded = true;
    this.attempt = newAuditContext('attempt', this.scope);
    this.attempt.mayRunAgain = mayRunAgain;
    return this.attempt;
  }

  /**
   * Sync mode: the response's last bytes wait until the row is written (committed, or in the
   * spool; `log()` bounds the wait), and the row is made when the response is ended, after every
   * interceptor and exception filter, with the final status. A response ended before the handler
   * did (`@Res()`) is not held: it is recorded once the handler ends.
   */
  holdResponse(): void {
    this.held = true;
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

  /** The handler ended or was cancelled; the first observation of each attempt counts. */
  observe(observation: HandlerObservation): void {
    this.observation ??= observation;
    this.recordIfDone();
  }

  private recordIfDone(): void {
    if (this.recorded || !this.responseEnded || (this.handling && !this.observation)) return;
    void this.recordNow();
  }

  /** The response is being ended: record it now, unless the handler has not ended yet. */
  private recordAtEnd(): Promise<void> {
    // On a closed connection no finish follows: this end is the pipeline's.
    if (this.clientClosed) this.responseEnded = true;
    if (this.recorded || (this.handling && !this.observation)) return Promise.resolve();
    return this.recordNow();
  }

  /**
   * The connection closed before the response was finished. Nest still ends the response (an
   * exception filter too), on the closed socket: the row waits for that end, and for the handler,
   * until the request's deadline.
   */
  private clientLeft(): void {
    if (this.recorded || this.clientClosed) return;
    this.clientClosed = true;
    if (this.response.writableEnded) this.responseEnded = true;
    else if (!this.held) this.awaitEnd();
    this.recordIfDone();
  }

  /** Its deadline, or shutdown: a request that has not ended is recorded now. Never rejects. */
  giveUp(): Promise<void> {
    return this.recordNow(true);
  }

  /** Async mode, the client gone: the pipeline's call to `end()` is the only sign that it is done. */
  private awaitEnd(): void {
    const response = this.response;
    const end = response.end;
    response.end = (...args: unknown[]) => {
      response.end = end;
      this.responseEnded = true;
      this.recordIfDone();
      return end.apply(response, args);
    };
  }

  /** Never rejects, so that a held response is always let go. */
  private recordNow(unfinished = false): Promise<void> {
    if (this.recorded) return Promise.resolve();
    this.recorded = true;
    this.scope.closed = true;
    this.unfinished.done(this);
    try {
      const outcome = this.outcome(unfinished);
      if ((unfinished || outcome?.outcome === 'success') && this.scope.unsettled) return this.settleThenRecord(unfinished);
      return outcome ? this.write(this, outcome).catch(() => undefined) : Promise.resolve();
    } catch {
      return Promise.resolve();
    }
  }

  /** A `record()` row written in a transaction block TypeORM does not report stands for the request only if seen committed. */
  private async settleThenRecord(unfinished: boolean): Promise<void> {
    try {
      await settleRecorded(this.scope);
      const outcome = this.outcome(unfinished);
      if (outcome) await this.write(this, outcome);
    } catch {
      // Never rejects, as recordNow().
    }
  }

  private outcome(unfinished: boolean): RequestOutcome | undefined {
    const seen = this.observation;
    // Read now, not when the handler ended: an outer interceptor may commit the record() row after it.
    if (unfinished) {
      if (this.scope.recordedAtomically) return undefined;
      const settled = seen?.kind === 'settled' ? { result: seen.result, error: seen.error } : {};
      return { outcome: 'failure', statusCode: undefined, ...settled, reason: 'unfinished' };
    }
    const statusCode = this.response.statusCode;
    const failed = statusCode >= 400;
    if (seen?.kind === 'cancelled') return { outcome: 'failure', statusCode, reason: 'cancelled' };
    if (seen?.outcome === 'success' && !failed && this.scope.recordedAtomically) return undefined;
    const outcome = seen?.outcome === 'failure' || failed ? 'failure' : 'success';
    const closed = this.clientClosed ? { reason: 'client_closed' as const } : {};
    return { outcome, statusCode, result: seen?.result, error: seen?.error, ...closed };
  }
}
