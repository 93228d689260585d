import { type BeforeApplicationShutdown, Inject, Injectable, Logger, type OnApplicationBootstrap, Optional } from '@nestjs/common';
import { type DataSource, type Repository } from 'typeorm';
import { type AuditLog } from '../audit-log.entity';
import { type ResolvedAuditOptions } from '../audit-options';
import { AUDIT_OPTIONS, AUDIT_REPOSITORY } from '../audit.constants';
import { sanitizeDbError } from '../db-error';
import { AuditSealerConnection } from '../integrity/sealer-connection';
import { trailName } from '../integrity/seal-store';
import { SealerSession } from '../integrity/sealer-session';
import { sealerDeadlines } from '../integrity/sealer-timing';
import { resolveTable } from '../integrity/search-path';
import { witnessLine } from '../integrity/witness-line';
import { ConsoleSink } from '../sinks';
import { type Query } from './month-analysis';
import { applyRetention, type MonthDecision } from './retention';

/** The longest delay a Node timer keeps (2^31 - 1 ms, about 24.8 days); `retention.intervalMs` may be longer. */
const LONGEST_TIMER_MS = 2_147_483_647;

/** The longest one month's retention may take, or wait for a lock (ms). */
const STATEMENT_TIMEOUT_MS = 60_000;

/**
 * Applies the `retention` option (issue 21, see docs/LIFECYCLE.md): at start and every
 * `retention.intervalMs` (daily), off the write path, it removes the months that are wholly
 * sealed, older than `retention.months` and not under `retention.legalHold`, each by a checkpoint
 * signed with `integrity.signingKey` and the database's `audit_log_retire_month()`, and writes an
 * `audit.retained` line (the witness) for each. It runs on the sealer's connection: with
 * `integrity.sealerDatabaseUrl` that role, else the application's, needs
 * `GRANT EXECUTE ON FUNCTION audit_log_retire_month(date, integer)`. A failure is a warning; it is
 * tried again next time. Without the option, or with integrity off, it does nothing.
 *
 * @example
 * const decisions = await app.get(AuditRetention).retainNow();
 */
@Injectable()
export class AuditRetention implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('AuditModule');
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<MonthDecision[]> | undefined;
  /** The connection of the run under way, given up at shutdown. */
  private current: SealerSession | undefined;
  private stopped = false;
  private readonly connection: AuditSealerConnection;

  constructor(
    @Inject(AUDIT_OPTIONS) private readonly options: ResolvedAuditOptions,
    @Inject(AUDIT_REPOSITORY) private readonly repository: Repository<AuditLog>,
    private readonly console: ConsoleSink,
    @Optional() connection?: AuditSealerConnection,
  ) {
    this.connection = connection ?? new AuditSealerConnection(options, repository);
  }

  onApplicationBootstrap(): void {
    const retention = this.options.retention;
    if (!retention || typeof this.repository.manager?.query !== 'function') return;
    if (!this.options.integrity.enabled) {
      this.logger.warn('retention is set but integrity is off: nothing is sealed, so no month is ever removed (see docs/LIFECYCLE.md)');
      return;
    }
    this.schedule(0);
  }

  /**
   * Waits for a run under way for `writeTimeoutMs` at most, as the sealer does, then gives its
   * connection up (socket destroyed): a run caught by a server that answers nothing never holds
   * the shutdown.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.running) return;
    let timeout: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timeout = setTimeout(resolve, this.options.writeTimeoutMs).unref()));
    await Promise.race([this.running.catch(() => undefined), bound]);
    clearTimeout(timeout);
    this.current?.abandon(new Error('the application is shutting down: the retention run under way was given up'));
  }

  /** Applies retention now, after any run under way; returns what it did with each partition (none when off). Never throws. */
  retainNow(): Promise<MonthDecision[]> {
    const next = (this.running ?? Promise.resolve([])).then(() => this.attempt());
    this.running = next;
    return next.finally(() => {
      if (this.running === next) this.running = undefined;
    });
  }

  private schedule(delay: number): void {
    if (this.stopped || !this.options.retention) return;
    const interval = this.options.retention.intervalMs;
    // Node fires a timer longer than its maximum at once: a longer interval waits in steps.
    if (delay > LONGEST_TIMER_MS) {
      this.timer = setTimeout(() => this.schedule(delay - LONGEST_TIMER_MS), LONGEST_TIMER_MS).unref();
      return;
    }
    this.timer = setTimeout(() => void this.retainNow().then(() => this.schedule(interval)), delay).unref();
  }

  private async attempt(): Promise<MonthDecision[]> {
    const retention = this.options.retention;
    const dataSource = this.repository.manager.connection as DataSource;
    if (!retention || !dataSource?.isInitialized) return [];
    let session: { query: Query; release: () => Promise<unknown> } | undefined;
    try {
      session = await this.session();
      const { query } = session;
      const tablePath = this.repository.metadata.tablePath;
      const table = await resolveTable(query, tablePath);
      const [{ name }] = (await query('SELECT pg_catalog.current_database() AS name')) as { name: string }[];
      const trail = trailName(name, tablePath);
      const decisions = await applyRetention(
        { query },
        {
          table,
          months: retention.months,
          legalHold: retention.legalHold,
          legacy: retention.legacy,
          dryRun: false,
          signingKey: this.options.integrity.signingKey,
          timeoutMs: STATEMENT_TIMEOUT_MS,
          retained: (checkpoint) => {
            const { event, fields } = witnessLine(trail, checkpoint);
            this.console.emit(event, 'info', fields);
          },
        },
      );
      for (const failed of decisions.filter((d) => d.action === 'failed')) {
        this.logger.warn(`Retention could not remove ${failed.month} (${failed.reason}); tried again next time (see docs/LIFECYCLE.md)`);
      }
      return decisions;
    } catch (error) {
      const { code, message } = sanitizeDbError(error, this.connection.secrets());
      this.logger.warn(`Retention failed (${code}: ${message}); tried again next time (see docs/LIFECYCLE.md)`);
      return [];
    } finally {
      await session?.release().catch(() => undefined);
    }
  }

  /**
   * A connection for one run: the sealer's own pool's with `integrity.sealerDatabaseUrl`, else the
   * DataSource's. The sealer's deadlines, checked by the client (a server that answers nothing
   * never applies its own timeouts): a connection that does not come, or a round trip past the
   * statement's bound, fails the run, and its socket is destroyed.
   */
  private async session(): Promise<{ query: Query; release: () => Promise<unknown> }> {
    const pool = this.connection.pool();
    if (!pool)
      throw new Error(this.connection.separate ? "the sealer's own connection is closed" : 'the audit DataSource is not connected');
    const { connectMs } = sealerDeadlines(this.options.writeTimeoutMs);
    const session = await SealerSession.open(pool, connectMs, STATEMENT_TIMEOUT_MS + this.options.writeTimeoutMs);
    this.current = session;
    const release = async () => {
      if (this.current === session) this.current = undefined;
      // A run that failed mid-transaction leaves it open: rolled back before the connection goes back.
      await session.query('ROLLBACK').catch(() => undefined);
      session.release();
    };
    return { query: (sql, parameters) => session.query(sql, parameters) as Promise<Record<string, unknown>[]>, release };
  }
}
