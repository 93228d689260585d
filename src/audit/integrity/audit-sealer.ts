import { type BeforeApplicationShutdown, Inject, Injectable, Logger, type OnApplicationBootstrap, Optional } from '@nestjs/common';
import { type Repository } from 'typeorm';
import { quoteTablePath } from '../audit-insert-sql';
import { type AuditLog } from '../audit-log.entity';
import { type ResolvedAuditOptions } from '../audit-options';
import { AUDIT_OPTIONS, AUDIT_REPOSITORY } from '../audit.constants';
import { AuditSealerPrivilegeError, sealerRoleSharedWarning } from '../audit.errors';
import { sanitizeDbError } from '../db-error';
import { dataSourcePool } from '../db-session';
import { AUDIT_EVENTS, AuditReporter, ConsoleSink } from '../sinks';
import { type ChainBreak, ChainBrokenError, type ChainMemory, chainMemoryFor } from './chain-memory';
import { entryKeyUnknownError, type ForgedRow } from './entry-auth';
import { type Seal } from './seal';
import { newestSeal, sealOnce, sealTableOf, trailName, type UnknownKeyRow } from './seal-store';
import { forgedReport, ownHashBreak, sealStep, untrustedBreak } from './sealer-outcome';
import { checkNewestSeal, UntrustedSealError } from './seal-trust';
import { AuditSealerConnection } from './sealer-connection';
import { missingSealerPrivileges, sealerSeparation } from './sealer-roles';
import { busyLimitMs, SealerBusyWatch } from './sealer-busy';
import { sealerLockHolder } from './sealer-lock-holder';
import { SealerSession, SealTimeoutError } from './sealer-session';
import { nextAttemptDelay, type SealerDeadlines, sealerDeadlines, sealingLag, stallWaitMs } from './sealer-timing';
import { PIN_SEARCH_PATH_SQL, resolveTable } from './search-path';
import { witnessLine } from './witness-line';

/**
 * What the health indicator shows of sealing (integrity on).
 *
 * @example
 * const integrity = auditService.status().integrity as IntegrityStatus | undefined;
 * if (integrity && integrity.lag > 60_000) alert('sealing falls behind');
 */
export interface IntegrityStatus {
  /** When this process last committed a seal, ISO 8601; null before the first. */
  lastSealedAt: string | null;
  /** Milliseconds since the sealer last found nothing left to seal (0 right after): grows while it fails or falls behind. */
  lag: number;
  /** Sealing attempts failed in a row. */
  failures: number;
  /** Seals this process committed. */
  sealed: number;
  /** Set when the seals in the database stopped continuing the newest one this sealer made or saw: it seals nothing more. */
  chainBroken: (ChainBreak & { since: string }) | null;
  /** Rows this process refused to seal because they are not authentic (each also an `audit.forged` line). */
  forged: number;
}

/** Seals one attempt makes at most before yielding to the event loop's other work. */
const SEALS_PER_ATTEMPT = 20;

/** One attempt under way: its connection, when it last made progress, and whether it was given up. */
interface Attempt {
  session: SealerSession | undefined;
  progress: number;
  abandoned: boolean;
}

/**
 * Seals committed audit rows on a timer, off the request path (see docs/INTEGRITY.md): each seal
 * is committed to `audit_seal`, then written as an `audit.sealed` line, the witness. At start it
 * writes the newest seal's line again, in case the last run stopped between commit and line.
 * A failed attempt is an `audit.seal_failed` line, a Sentry warning and health details; the
 * sealer keeps trying, backing off up to a minute. Every step has a client-side deadline (see
 * docs/INTEGRITY.md): a connection `max(writeTimeoutMs, 5 s)`, a round trip its `statement_timeout`
 * plus `writeTimeoutMs` (then the connection is destroyed, out of the pool), a file operation of the
 * chain memory `writeTimeoutMs`; an attempt that makes no progress for longer than those is given
 * up as failed, so that the next one never waits behind it; its lock found taken by another session
 * for too long fails each attempt too ({@link SealerBusyWatch}). It remembers the newest seal it made or saw
 * (in memory, and in `<spoolDir>/integrity/` with a spool): when the database's seals no longer
 * continue it, it seals nothing more and says so (`audit.chain_broken`, a Sentry error, health).
 * It seals on the app's DataSource, or with `integrity.sealerDatabaseUrl` on a pool of its own
 * ({@link AuditSealerConnection}) as a role that alone may insert seals (docs/INTEGRITY.md, "Roles").
 * With `integrity.enabled` false it does nothing.
 *
 * @example
 * const status = app.get(AuditSealer).status(); // { lastSealedAt, lag, failures, sealed, chainBroken }
 */
@Injectable()
export class AuditSealer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('AuditModule');
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private reemitted = false;
  /** Which trail the seals are of (`database/table`), so that one log group can witness several. */
  private trail = '';
  /** The audit table named with its schema, resolved once. */
  private table = '';
  private memory: ChainMemory | null = null;
  private broken: (ChainBreak & { since: string }) | null = null;
  private failures = 0;
  /** Since when sealing has waited before a row whose entry key this sealer does not hold (null: it is not waiting). */
  private unknownKeySince: number | null = null;
  private sealed = 0;
  private forged = 0;
  private lastSealedAt: Date | null = null;
  private caughtUpAt = Date.now();
  private current: Attempt | undefined;
  private readonly deadlines: SealerDeadlines;
  private readonly connection: AuditSealerConnection;
  /** With credentials of its own: whether the app's role was checked for INSERT on the seal table. */
  private separationChecked = false;
  /** Says so when the sealer's lock stays taken by another session for too long. */
  private readonly busyWatch: SealerBusyWatch;

  constructor(
    @Inject(AUDIT_OPTIONS) private readonly options: ResolvedAuditOptions,
    @Inject(AUDIT_REPOSITORY) private readonly repository: Repository<AuditLog>,
    private readonly console: ConsoleSink,
    @Inject(AuditReporter) private readonly reporter: AuditReporter,
    @Optional() connection?: AuditSealerConnection,
  ) {
    this.deadlines = sealerDeadlines(options.writeTimeoutMs);
    this.busyWatch = new SealerBusyWatch(busyLimitMs(this.deadlines.stallMs));
    this.connection = connection ?? new AuditSealerConnection(options, repository);
  }

  /** Null when integrity is off. */
  status(): IntegrityStatus | null {
    if (!this.options.integrity.enabled) return null;
    return {
      lastSealedAt: this.lastSealedAt?.toISOString() ?? null,
      lag: sealingLag(Date.now(), this.caughtUpAt),
      failures: this.failures,
      sealed: this.sealed,
      chainBroken: this.broken,
      forged: this.forged,
    };
  }

  onApplicationBootstrap(): void {
    if (!this.options.integrity.enabled) return;
    if (typeof this.repository.manager?.query !== 'function') {
      this.logger.warn('Integrity is enabled but the AuditLog repository is a test double: nothing is sealed');
      return;
    }
    if (this.options.integrity.entryKeys.length === 0) {
      this.logger.warn(
        'Integrity is enabled without integrity.entryKeys: rows are sealed, but not checked for authenticity (see docs/INTEGRITY.md)',
      );
    }
    this.schedule(0);
  }

  /**
   * Stops the timer and waits for an attempt under way, at most `writeTimeoutMs`; then gives up its
   * connection (the transaction rolls back), so that closing the DataSource does not wait for it.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    let timeout: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timeout = setTimeout(resolve, this.options.writeTimeoutMs).unref()));
    await Promise.race([this.running, bound]);
    clearTimeout(timeout);
    if (this.current) {
      this.current.abandoned = true;
      this.current.session?.abandon(new SealTimeoutError('attempt', this.options.writeTimeoutMs));
    }
  }

  /**
   * Seals what is sealable now (up to 20 seals), as the timer does, after any attempt under way;
   * resolves when done. Failures are reported, never thrown.
   */
  sealNow(): Promise<void> {
    const next = (this.running ?? Promise.resolve()).then(() => this.watched());
    this.running = next;
    return next.finally(() => {
      if (this.running === next) this.running = undefined;
    });
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.sealNow().then(() => this.schedule(nextAttemptDelay(this.options.integrity.intervalMs, this.failures)));
    }, delay).unref();
  }

  /**
   * One attempt, given up when it makes no progress for `stallMs` (its connection destroyed, one
   * failure counted): it then settles at once, and what the attempt does later reports nothing.
   */
  private watched(): Promise<void> {
    const attempt: Attempt = { session: undefined, progress: Date.now(), abandoned: false };
    this.current = attempt;
    const run = this.attempt(attempt);
    const { stallMs } = this.deadlines;
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const check = () => {
        const wait = stallWaitMs(Date.now() - attempt.progress, stallMs);
        if (wait !== null) {
          timer = setTimeout(check, wait).unref();
          return;
        }
        const error = new SealTimeoutError('attempt', stallMs);
        attempt.abandoned = true;
        attempt.session?.abandon(error);
        this.failed(error);
        resolve();
      };
      timer = setTimeout(check, stallMs).unref();
      void run.finally(() => {
        clearTimeout(timer);
        if (this.current === attempt) this.current = undefined;
        resolve();
      });
    });
  }

  private async attempt(attempt: Attempt): Promise<void> {
    if (this.broken) return;
    let runner: SealerSession | undefined;
    try {
      const pool = this.connection.pool();
      // Not connected yet (the app started while the database was away): nothing to do until it is.
      if (!pool) return;
      const progress = () => (attempt.progress = Date.now());
      if (!this.separationChecked && this.connection.separate) await this.checkSeparation(attempt, progress);
      if (attempt.abandoned) return;
      runner = await SealerSession.open(pool, this.deadlines.connectMs, this.deadlines.roundTripMs, progress);
      progress();
      if (attempt.abandoned) return;
      attempt.session = runner;
      const session = runner;
      const query = (sql: string, parameters: unknown[]) => session.query(sql, parameters);
      if (!this.reemitted) {
        const [{ name }] = (await session.query('SELECT pg_catalog.current_database() AS name')) as { name: string }[];
        this.trail = trailName(name, this.repository.metadata.tablePath);
        this.table = await resolveTable(query, this.repository.metadata.tablePath);
        if (this.connection.separate) {
          const missing = await missingSealerPrivileges(query, quoteTablePath(this.table), sealTableOf(this.table));
          if (missing.length > 0) throw AuditSealerPrivilegeError.missing(missing);
        }
        const memory = this.memory ?? chainMemoryFor(this.trail, this.options);
        if (!this.memory) await memory.load();
        this.memory = memory;
        // Checked before the newest seal is witnessed again: a cut chain's newest seal is never witnessed.
        let newest: Seal | null;
        await session.startTransaction();
        try {
          await session.query(PIN_SEARCH_PATH_SQL);
          newest = await newestSeal(session, this.table);
          const cut = newest && ownHashBreak(this.trail, memory.remembered, memory.file, newest);
          if (cut) throw new ChainBrokenError(cut);
          // Never witnessed again, nor remembered: a seal the sealer cannot authenticate.
          if (newest) await checkNewestSeal(query, sealTableOf(this.table), newest, this.options.integrity.signingKey);
          await memory.check(query, sealTableOf(this.table), newest);
        } finally {
          await session.rollbackTransaction().catch(() => undefined);
        }
        if (newest) this.witness(newest);
        this.reemitted = true;
      }
      const memory = this.memory as ChainMemory;
      const guard = (newest: { seq: number; hash: Buffer } | null) => memory.check(query, sealTableOf(this.table), newest);
      const { maxRowsPerSeal, signingKey, entryKeys, unknownKeyGraceMs } = this.options.integrity;
      // How long this sealer has waited for one that holds a key it lacks (a row's own age counts too, see sealOnce).
      const unknownKeyGrace = {
        graceMs: unknownKeyGraceMs,
        waitedMs: this.unknownKeySince === null ? 0 : Date.now() - this.unknownKeySince,
      };
      const options = { maxRows: maxRowsPerSeal, signingKey, guard, entryKeys, unknownKeyGrace, timeoutMs: this.deadlines.statementMs };
      let unknownKey: UnknownKeyRow | null = null;
      let busy = false;
      for (let i = 0; i < SEALS_PER_ATTEMPT && !this.stopped && !attempt.abandoned; i++) {
        const result = await sealOnce(session, this.table, options);
        busy = result === 'busy';
        const { seal, unknownKey: unknown, caughtUp, last } = sealStep(result, maxRowsPerSeal);
        unknownKey = unknown;
        if (seal) {
          this.sealed += 1;
          memory.remember(seal.seq, seal.hash);
          this.lastSealedAt = new Date(seal.sealedAt);
          this.witness(seal);
          if (seal.forged.length > 0) this.reportForged(seal.seq, seal.forged);
        }
        if (caughtUp) this.caughtUpAt = Date.now();
        if (last) break;
      }
      await memory.persist();
      if (attempt.abandoned) return;
      // Who holds it, and since when: another instance's brief seals one after another are no long hold.
      const holder = busy ? await sealerLockHolder((sql) => session.query(sql)) : null;
      if (attempt.abandoned) return;
      const heldTooLong = this.busyWatch.observe(holder);
      // Once per attempt: sealing waits for a process that holds the key (a rotation not rolled out yet), for unknownKeyGraceMs at most.
      if (unknownKey) {
        this.unknownKeySince ??= Date.now();
        this.failed(entryKeyUnknownError(unknownKey));
      } else if (heldTooLong) {
        this.failed(heldTooLong);
      } else {
        // Another instance's sealer holding the lock says nothing of the row waited for: the clock runs on.
        if (!busy) this.unknownKeySince = null;
        this.failures = 0;
      }
    } catch (error) {
      // An attempt given up was reported then: what it does later says nothing more.
      if (attempt.abandoned) return;
      if (error instanceof ChainBrokenError) this.chainBroken(error.found);
      else if (error instanceof UntrustedSealError) this.chainBroken(untrustedBreak(this.trail, this.memory, error));
      else this.failed(error);
    } finally {
      runner?.release();
    }
  }

  /**
   * Once: warns when the app's role can still append seals (the separation is not in force): it
   * holds INSERT on the seal table, owns the trail's objects, is a superuser, or is a member of a
   * role that does.
   * On a connection of the app's pool, with the sealer's client-side deadlines: a database that
   * never answers gives the check up (its connection destroyed) instead of holding it for ever.
   */
  private async checkSeparation(attempt: Attempt, progress: () => void): Promise<void> {
    const pool = dataSourcePool(this.repository.manager.connection);
    // The app's DataSource is not connected: checked at a later attempt.
    if (!pool) return;
    let session: SealerSession | undefined;
    try {
      session = await SealerSession.open(pool, this.deadlines.connectMs, this.deadlines.roundTripMs, progress);
      // Shutdown gives up the attempt's connection: this one while the check runs.
      attempt.session = session;
      if (attempt.abandoned) return;
      const checked = session;
      const query = (sql: string, parameters: unknown[]) => checked.query(sql, parameters);
      const logTable = await resolveTable(query, this.repository.metadata.tablePath);
      const sealTable = sealTableOf(logTable);
      const { appRole, gaps } = await sealerSeparation(query, quoteTablePath(logTable), sealTable);
      if (gaps.length > 0) this.logger.warn(sealerRoleSharedWarning(sealTable, appRole, gaps));
      this.separationChecked = true;
    } catch {
      // The app's database is away or silent: checked at a later attempt; sealing goes on meanwhile.
    } finally {
      if (attempt.session === session) attempt.session = undefined;
      session?.release();
    }
  }

  private witness(seal: Seal): void {
    const { event, fields } = witnessLine(this.trail, seal);
    this.console.emit(event, 'info', fields);
  }

  private chainBroken(found: ChainBreak): void {
    this.broken = { ...found, since: new Date().toISOString() };
    this.console.emit(AUDIT_EVENTS.chainBroken, 'error', { ...found });
    try {
      this.reporter.chainBroken?.(found);
    } catch {
      // A reporter that throws must not stop the sealer.
    }
  }

  /** One `audit.forged` line per row left out of seal `seq`, and one Sentry warning for them all. */
  private reportForged(seq: number, rows: ForgedRow[]): void {
    this.forged += rows.length;
    const { lines, report } = forgedReport(this.trail, seq, rows, this.options.privacy.enabled);
    for (const fields of lines) this.console.emit(AUDIT_EVENTS.forged, 'error', fields);
    try {
      this.reporter.forgedRows?.(report);
    } catch {
      // A reporter that throws must not stop the sealer.
    }
  }

  private failed(error: unknown): void {
    this.failures += 1;
    const sanitized = sanitizeDbError(error, this.connection.secrets());
    const lastSealedAt = this.lastSealedAt?.toISOString() ?? null;
    this.console.emit(AUDIT_EVENTS.sealFailed, 'error', { error: sanitized, consecutiveFailures: this.failures, lastSealedAt });
    try {
      this.reporter.sealingFailed?.({ error: sanitized, consecutiveFailures: this.failures, lastSealedAt });
    } catch {
      // A reporter that throws must not stop the sealer.
    }
  }
}
