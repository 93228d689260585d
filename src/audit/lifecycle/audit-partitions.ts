import { type BeforeApplicationShutdown, Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { type Repository } from 'typeorm';
import { quoteTablePath } from '../audit-insert-sql';
import { type AuditLog } from '../audit-log.entity';
import { type ResolvedAuditOptions } from '../audit-options';
import { AUDIT_OPTIONS, AUDIT_REPOSITORY } from '../audit.constants';
import { AuditDbTimeoutError } from '../audit.errors';
import { dataSourcePool, DbSession } from '../db-session';
import { connectionSecrets, sanitizeDbError } from '../db-error';
import { sealerDeadlines } from '../integrity/sealer-timing';
import { PIN_SEARCH_PATH_SQL, resolveTable } from '../integrity/search-path';
import { isLockNotAvailable, LOCK_TRIES, withLockRetries } from './lock-retries';
import { monthOf, monthStart, partitionLayout } from './month-partitions';

/**
 * What the health indicator shows of the monthly partitions (details `partitions`).
 *
 * @example
 * const partitions = auditService.status().partitions as PartitionStatus | undefined;
 * partitions?.coveredUntil; // the end of the last month a partition exists for
 */
export interface PartitionStatus {
  /** Whether `audit_log` is partitioned (the migration ran); null until first checked. */
  partitioned: boolean | null;
  /** The end of the last month a partition exists for, ISO 8601: rows dated from then on go to the default partition. */
  coveredUntil: string | null;
  /** Rows in the default partition (counted up to 100 000): each is moved when its month's partition is created. */
  defaultRows: number;
  /** Partitions this process created, and rows it moved out of the default partition. */
  created: number;
  moved: number;
  /** When the last check succeeded, ISO 8601. */
  lastRunAt: string | null;
  /** The last check's error (sanitized), null once a check succeeds. */
  lastError: string | null;
}

/** What `audit_log_create_partitions` answers (bigints as text). */
interface UpkeepRow {
  created: number;
  moved: string;
  default_rows: string;
  covered_until: Date | null;
}

/** SQLSTATE of "permission denied", and what the application's role then needs. */
const INSUFFICIENT_PRIVILEGE = '42501';
const GRANT_HINT = 'GRANT EXECUTE ON FUNCTION audit_log_create_partitions(integer) to the application role';
/** SQLSTATE of "function does not exist": the table was not partitioned by the migration. */
const UNDEFINED_FUNCTION = '42883';

/**
 * Keeps `audit_log`'s monthly partitions ahead of time (issue 21, see docs/LIFECYCLE.md): at start
 * and every `partitions.intervalMs` (hourly), off the write path, it calls the migration's
 * `audit_log_create_partitions(monthsAhead)`, which creates this month's and the next
 * `monthsAhead` months' partitions where missing and moves the default partition's rows of each
 * into it. The function runs as the table's owner: the application's role needs only
 * `GRANT EXECUTE ON FUNCTION audit_log_create_partitions(integer)`. A refusal or failure is a
 * warning and health details; writes never wait for it (a row of a month without a partition
 * goes to the default partition).
 *
 * @example
 * const { coveredUntil, defaultRows } = app.get(AuditPartitions).status() ?? {};
 */
@Injectable()
export class AuditPartitions implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('AuditModule');
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private active = false;
  private warned = '';
  /** The connection of the check under way, given up at shutdown. */
  private current: DbSession | undefined;
  private readonly state: PartitionStatus = {
    partitioned: null,
    coveredUntil: null,
    defaultRows: 0,
    created: 0,
    moved: 0,
    lastRunAt: null,
    lastError: null,
  };

  constructor(
    @Inject(AUDIT_OPTIONS) private readonly options: ResolvedAuditOptions,
    @Inject(AUDIT_REPOSITORY) private readonly repository: Repository<AuditLog>,
  ) {}

  /** Null when the repository is a test double (nothing is maintained). */
  status(): PartitionStatus | null {
    return this.active ? { ...this.state } : null;
  }

  /**
   * Runs the first check before the application starts listening, so that this month's partition
   * exists (and the check's transaction is over) before the first request. It waits at most
   * `writeTimeoutMs`: a database that is down or slow at start delays nothing further, and the
   * check goes on in the background.
   */
  async onApplicationBootstrap(): Promise<void> {
    if (typeof this.repository.manager?.query !== 'function') return;
    this.active = true;
    const first = this.maintainNow().then(() => this.schedule(this.options.partitions.intervalMs));
    await this.bounded(first);
  }

  /**
   * Stops the timer and waits for a check under way, at most `writeTimeoutMs`, then gives its
   * connection up (socket destroyed): TypeORM's `destroy()`, which `app.close()` runs next, would
   * wait for it.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.bounded(this.running);
    this.current?.abandon(AuditDbTimeoutError.upkeep('query', this.options.writeTimeoutMs));
  }

  /** Checks and creates the partitions now, after any check under way; failures are reported, never thrown. */
  maintainNow(): Promise<void> {
    const next = (this.running ?? Promise.resolve()).then(() => this.attempt());
    this.running = next;
    return next.finally(() => {
      if (this.running === next) this.running = undefined;
    });
  }

  /** Waits for `work`, at most `writeTimeoutMs`. */
  private async bounded(work: Promise<void> | undefined): Promise<void> {
    let timeout: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timeout = setTimeout(resolve, this.options.writeTimeoutMs).unref()));
    await Promise.race([work, bound]);
    clearTimeout(timeout);
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.maintainNow().then(() => this.schedule(this.options.partitions.intervalMs)), delay).unref();
  }

  /** One call of the function, in its own transaction; its locks are gone once this returns or throws. */
  private async createPartitions(runner: DbSession, schema: string, statementMs: number): Promise<UpkeepRow> {
    try {
      await runner.startTransaction();
      await runner.query(`SET LOCAL statement_timeout = '${statementMs}ms'; ${PIN_SEARCH_PATH_SQL}`);
      const [row] = (await runner.query(
        `SELECT created, moved::text AS moved, default_rows::text AS default_rows, covered_until
         FROM ${quoteTablePath(schema)}.audit_log_create_partitions($1)`,
        [this.options.partitions.monthsAhead],
      )) as UpkeepRow[];
      await runner.commitTransaction();
      return row;
    } catch (error) {
      if (runner.isTransactionActive && !runner.failed) await runner.rollbackTransaction().catch(() => undefined);
      throw error;
    }
  }

  /**
   * What health says when every try found a lock taken: the months of this one and the months
   * ahead that still have no partition (their rows go to the default partition meanwhile).
   */
  private async busyMessage(runner: DbSession, table: string, cause: string): Promise<string> {
    let missing: string[] | null = null;
    try {
      await runner.startTransaction();
      await runner.query(PIN_SEARCH_PATH_SQL);
      const layout = await partitionLayout((sql, parameters) => runner.query(sql, parameters) as Promise<Record<string, unknown>[]>, table);
      await runner.commitTransaction();
      const current = monthOf(Date.now());
      const made = new Set(layout.months.map((m) => m.month));
      missing = Array.from({ length: this.options.partitions.monthsAhead + 1 }, (_, i) => monthOf(monthStart(current, i))).filter(
        (month) => !made.has(month) && !(layout.legacyUntil !== null && month < layout.legacyUntil),
      );
    } catch {
      if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
    }
    const which =
      missing === null
        ? 'unknown months'
        : missing.length > 0
          ? missing.join(', ')
          : 'past months whose rows wait in the default partition';
    return `partitions not created: ${which}; a lock was taken on each of ${LOCK_TRIES} tries, tried again in the next interval (${cause})`;
  }

  private async attempt(): Promise<void> {
    const pool = dataSourcePool(this.repository.manager.connection);
    if (!pool) return;
    // Bounded by the client too: a server that never answers applies no statement_timeout.
    const { connectMs, statementMs, roundTripMs } = sealerDeadlines(this.options.writeTimeoutMs);
    let runner: DbSession | undefined;
    let table: string | undefined;
    try {
      runner = await DbSession.checkout(pool, { connectMs, roundTripMs, timeout: (step, ms) => AuditDbTimeoutError.upkeep(step, ms) });
      this.current = runner;
      const session = runner;
      table = await resolveTable((sql, parameters) => session.query(sql, parameters), this.repository.metadata.tablePath);
      const schema = table.slice(0, table.lastIndexOf('.'));
      const row = await withLockRetries(() => this.createPartitions(session, schema, statementMs), { stop: () => this.stopped });
      Object.assign(this.state, {
        partitioned: true,
        coveredUntil: row.covered_until ? new Date(row.covered_until).toISOString() : null,
        defaultRows: Number(row.default_rows),
        created: this.state.created + row.created,
        moved: this.state.moved + Number(row.moved),
        lastRunAt: new Date().toISOString(),
        lastError: null,
      });
      this.warned = '';
    } catch (error) {
      if (runner?.isTransactionActive && !runner.failed) await runner.rollbackTransaction().catch(() => undefined);
      const { code, message: cause } = sanitizeDbError(error, connectionSecrets(this.repository.manager.connection?.options));
      const busy = isLockNotAvailable(error);
      // A lock taken means the function exists: the table is partitioned, only this call could not go on.
      if (busy) this.state.partitioned = true;
      const message = busy && table && runner ? await this.busyMessage(runner, table, cause) : cause;
      if (code === UNDEFINED_FUNCTION) {
        // Checked again at every interval: a deploy may run the migration while this process lives.
        this.state.partitioned = false;
        if (this.warned !== code) this.logger.warn('audit_log is not partitioned (run AUDIT_MIGRATIONS): no partitions are kept ahead');
        this.warned = code;
        return;
      }
      // The general hint names the function without its arguments or the role: this one names both.
      const text = code === INSUFFICIENT_PRIVILEGE ? message.replace(/ \([^()]*\)$/, ` (${GRANT_HINT})`) : message;
      this.state.lastError = `${code}: ${text}`;
      if (this.warned !== code) {
        this.warned = code;
        this.logger.warn(
          `Could not create the partitions of audit_log ahead (${code}: ${text}); rows of months without one go to the default partition (see docs/LIFECYCLE.md)`,
        );
      }
    } finally {
      if (this.current === runner) this.current = undefined;
      runner?.release();
    }
  }
}
