import { Logger } from '@nestjs/common';
import { type AuditRecord } from './audit-entry';
import { AuditStateHistory } from './audit-state-history';
import { lineContext } from './audit-fallback';
import { type ResolvedAuditOptions } from './audit-options';
import { type SanitizedDbError, sanitizeDbError } from './db-error';
import { AUDIT_EVENTS, type AuditReporter, type ConsoleSink, type WriteFailureReport } from './sinks';

/**
 * `up`: writing to the database; `down`: buffering; `half-open`: one try is testing the database.
 *
 * @example
 * const state: AuditState = auditService.status().state; // 'up', 'down' or 'half-open'
 */
export type AuditState = 'up' | 'down' | 'half-open';

/**
 * The audit database as the writer sees it, and what operators hear of it: `up` until a write
 * fails; then `down` for a cool-down (exponential backoff with jitter, capped), with a stderr line
 * and a Sentry warning for every failed attempt; `half-open` while one try tests the database;
 * `up` again when it commits, with the outage's totals once everything kept has been flushed.
 *
 * @example
 * const circuit = new AuditCircuit(options, consoleSink, reporter, secrets, () => retry());
 * circuit.failed(error, 'write', record, 1, buffered);
 * circuit.state; // 'down'
 */
export class AuditCircuit {
  private current: AuditState = 'up';
  /** Transitions, for the viewer's state chart. */
  readonly history = new AuditStateHistory('up');
  lastError: SanitizedDbError | null = null;
  downSince: Date | null = null;
  private readonly logger = new Logger('AuditModule');
  private consecutiveFailures = 0;
  private retryAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private outage = { failedAttempts: 0, dropped: 0, flushed: 0 };

  constructor(
    private readonly options: Pick<ResolvedAuditOptions, 'retryBackoffMs' | 'retryBackoffMaxMs'> & {
      privacy?: Pick<ResolvedAuditOptions['privacy'], 'enabled'>;
    },
    private readonly console: ConsoleSink,
    private readonly reporter: AuditReporter,
    /** Strings no error text may show (the connection's password and URL). */
    private readonly secrets: string[],
    /** Called when a cool-down ends, so that something buffered can be the half-open try. */
    private readonly retryDue: () => void,
    /** The jitter's source, a number in [0, 1): a test passes its own. */
    private readonly random: () => number = Math.random,
  ) {}

  get state(): AuditState {
    return this.current;
  }

  /** Down, and its cool-down over: the next entry may try the database. */
  get mayRetry(): boolean {
    return this.current === 'down' && Date.now() >= this.retryAt;
  }

  /** A failed write, probe, flush or connect: down, a line, a Sentry warning, a cool-down. */
  failed(error: unknown, attempt: WriteFailureReport['attempt'], first: AuditRecord | undefined, entries: number, buffered: number): void {
    const wasUp = this.current === 'up';
    this.lastError = sanitizeDbError(error, this.secrets);
    // Concurrent batches failing together are one failure for the backoff.
    if (!(attempt === 'write' && !wasUp)) this.consecutiveFailures += 1;
    this.current = 'down';
    this.history.enter('down');
    this.downSince ??= new Date();
    this.retryAt = Date.now() + this.backoffMs();
    clearTimeout(this.retryTimer);
    if (!this.stopped) this.retryTimer = setTimeout(this.retryDue, this.retryAt - Date.now()).unref();
    this.outage.failedAttempts += 1;
    const context = lineContext(first);
    this.console.emit(AUDIT_EVENTS.dbWriteFailed, 'error', {
      ...context,
      attempt,
      entries,
      error: this.lastError,
      retryAt: new Date(this.retryAt).toISOString(),
    });
    // With `privacy`, no actor id leaves the process outside the trail: an erasure could not reach it there (docs/PRIVACY.md).
    const userId = this.options.privacy?.enabled ? null : context.userId;
    this.alert(() =>
      this.reporter.writeFailed({ ...context, userId, error: this.lastError as SanitizedDbError, attempt, entries, buffered }),
    );
  }

  /** One try is testing the database. */
  halfOpen(): void {
    this.current = 'half-open';
    this.history.enter('half-open');
  }

  /** A try succeeded: a batch committed, a connection opened, or a probe got through. */
  up(): void {
    this.current = 'up';
    this.history.enter('up');
  }

  /**
   * A batch committed: the cool-down starts from `retryBackoffMs` again. A probe that got through
   * does not reset it, so that a database that takes the probe but fails real writes is tried
   * ever less often, not every `retryBackoffMs`.
   */
  committed(): void {
    this.consecutiveFailures = 0;
  }

  /** Entries of this outage that reached the database late, or were lost: for the recovery totals. */
  count(kind: 'flushed' | 'dropped', entries: number): void {
    this.outage[kind] += entries;
  }

  /** Once up with nothing left to flush: the `audit.recovered` line and Sentry event, with the outage's totals. */
  recovered(): void {
    if (this.current !== 'up' || !this.downSince) return;
    const totals = { ...this.outage, downForMs: Date.now() - this.downSince.getTime() };
    this.console.emit(AUDIT_EVENTS.recovered, 'info', totals);
    this.alert(() => this.reporter.recovered(totals));
    this.downSince = null;
    this.outage = { failedAttempts: 0, dropped: 0, flushed: 0 };
  }

  /** No retry is scheduled from now on (shutdown). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
  }

  /** Exponential backoff with "equal jitter": half the delay fixed, half random. */
  private backoffMs(): number {
    const exponent = Math.max(0, this.consecutiveFailures - 1);
    const delay = Math.min(this.options.retryBackoffMaxMs, this.options.retryBackoffMs * 2 ** Math.min(exponent, 30));
    return delay / 2 + this.random() * (delay / 2);
  }

  /** A failing alert sink must not cost an entry or a state change. */
  private alert(send: () => void): void {
    try {
      send();
    } catch (error) {
      this.logger.warn(`audit reporter failed: ${String(error)}`);
    }
  }
}
