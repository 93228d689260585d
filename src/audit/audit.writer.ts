import { type EntityManager, type Repository } from 'typeorm';
import { type AuditRecord } from './audit-entry';
import { type AuditLog } from './audit-log.entity';
import { doubleInsert, toAuditLog } from './audit-repository';
import { buildAuditInsert, buildAuditInsertText, buildAuditProbeText, quoteTablePath } from './audit-insert-sql';
import { BoundedPoolQuery, type PgPool } from './bounded-pool-query';
import { stallTolerantDeadline } from './stall-tolerant-deadline';
import { WRITE_TIMEOUT_CODE } from './db-error';

/** Attempts that may be outstanding at once: the write queue's four batches, a recovery flush, a probe. */
export const MAX_OUTSTANDING_WRITES = 6;

/** The least time a connection opened for a write may take (a TLS handshake on a busy host), whatever `writeTimeoutMs`. */
const CONNECT_FLOOR_MS = 5000;

/**
 * Inserts batches of records into `audit_log` with one multi-row `INSERT … ON CONFLICT DO
 * NOTHING` (the key is `(id, occurred_at)`, both kept through retries and replays), so a retried
 * or replayed record never makes a second row. A batch is one round trip:
 * one simple-protocol query string, `SET LOCAL statement_timeout, lock_timeout` (each the write
 * timeout) and the INSERT with its values as escaped literals, which PostgreSQL runs and commits
 * as one implicit transaction: the settings end with it and never reach the pool's other users,
 * and no transaction waits on the client between INSERT and COMMIT. A connection the pool holds
 * inside a transaction block (a query runner released without a rollback, a `BEGIN` sent as SQL
 * through a DataSource the app shares with the trail) would run the batch inside that block, where
 * it commits only if the block does: no batch is sent on one (see `blockFreeCheckout`), and one
 * that ran in a block anyway (its status not known before: a `pg` too old to keep it) is rolled
 * back with its connection and sent again on another. A timer bounds the whole
 * call (pool wait included): a locked table costs at most `timeoutMs`. A batch that misses it
 * releases what it holds: its client leaves the pool with its socket destroyed, or, still waiting
 * in the pool's queue, it leaves the queue, so that a silent partition, which answers nothing,
 * keeps no query, SQL text or connection alive; at most
 * {@link MAX_OUTSTANDING_WRITES} attempts are outstanding (see {@link BoundedPoolQuery}).
 * A DataSource left uninitialized (TypeORM `manualInitialization`, so that the app can start while
 * the audit database is unreachable) is initialized, with its migrations, by the first write.
 * A repository whose `insert` or `save` a test replaced is written through that method instead
 * (see {@link doubleInsert}), under the same timeout.
 *
 * @example
 * await new AuditWriter(repository, 2000).insert(records); // rejects on failure or timeout
 */
export class AuditWriter {
  private connecting: Promise<void> | undefined;
  private readonly queries: BoundedPoolQuery;

  /** Made here, not in {@link send}: a closure from there would keep its batch alive while a connection is being opened. */
  private readonly timedOut = () => writeTimeoutError(this.timeoutMs);

  /** Server-side bounds of each batch: the statement, and its wait for the table's lock. */
  private readonly settings: string;

  /** `inBlock`: told of each pooled connection found inside a transaction block, which no batch is sent on. */
  constructor(
    private readonly repository: Repository<AuditLog>,
    readonly timeoutMs: number,
    inBlock?: () => void,
  ) {
    // A repository that is neither real nor a usable double fails start-up, not the first write.
    doubleInsert(repository);
    this.queries = new BoundedPoolQuery(MAX_OUTSTANDING_WRITES, Math.max(timeoutMs, CONNECT_FLOOR_MS), inBlock);
    this.settings = ['statement_timeout', 'lock_timeout'].map((name) => `SET LOCAL ${name} = ${timeoutMs}`).join('; ');
  }

  /** Rejects when the batch is not committed by `deadline` (default: `timeoutMs` from now). */
  async insert(records: readonly AuditRecord[], deadline = Date.now() + this.timeoutMs): Promise<void> {
    if (records.length === 0) return;
    await this.send(() => `${this.settings}; ${buildAuditInsertText(this.table(), records)}`, records, deadline);
  }

  /**
   * A zero-row INSERT into the table, under the same bounds as a batch: it succeeds only when a
   * batch would get through the connection, the INSERT privilege, the table's lock and a
   * read-only server, and it writes nothing. A test double is asked to insert no rows.
   */
  async probe(deadline = Date.now() + this.timeoutMs): Promise<void> {
    await this.send(() => `${this.settings}; ${buildAuditProbeText(this.table())}`, [], deadline);
  }

  /** Shutdown: connections still being opened for writes are given up, so that closing the DataSource does not wait for them. */
  abandonOpening(): void {
    this.queries.abandonOpening();
  }

  /** Attempts whose client or query has not settled yet (at most {@link MAX_OUTSTANDING_WRITES}). */
  get outstanding(): number {
    return this.queries.outstanding;
  }

  private async send(text: () => string, records: readonly AuditRecord[], deadline: number): Promise<void> {
    const write = this.connect().then(() => {
      // Checked at each write: a test may spy on `insert` after start-up.
      const double = doubleInsert(this.repository);
      if (double) return double(records.map(toAuditLog));
      const pool = this.pool();
      if (pool) return this.queries.run(pool, text, deadline - Date.now(), this.timedOut);
      return this.repository.manager.query(text());
    });
    await withTimeout(write, deadline - Date.now(), this.timeoutMs);
  }

  /** The driver's `pg` pool, written to past TypeORM's query runner, when there is one. */
  private pool(): PgPool | undefined {
    const master = (this.repository.manager.connection?.driver as { master?: Partial<PgPool> } | undefined)?.master;
    return typeof master?.connect === 'function' ? (master as PgPool) : undefined;
  }

  /** Inserts inside the caller's transaction: no timeout of its own, and failures reject. */
  async insertWith(manager: EntityManager, records: readonly AuditRecord[]): Promise<void> {
    const { sql, parameters } = buildAuditInsert(this.table(), records);
    await manager.query(sql, parameters);
  }

  /** False until the DataSource is initialized (by the app, or by {@link connect}, migrations included). */
  get connected(): boolean {
    const dataSource = this.repository.manager?.connection;
    // TypeORM marks a DataSource initialized before its migrations have run: the pending promise decides.
    return !dataSource || (dataSource.isInitialized && this.connecting === undefined);
  }

  /** {@link connect}, bounded by the write timeout. */
  connectWithinTimeout(): Promise<void> {
    return withTimeout(this.connect(), this.timeoutMs, this.timeoutMs);
  }

  /**
   * Initializes the DataSource (running its migrations) if the app left that to the module. A
   * PostgreSQL DataSource given no connect timeout gets one (the write path's connect bound): `pg`
   * has none, and a server that accepts the connection and never answers would hold the first
   * try, which every later try waits on, for ever.
   */
  connect(): Promise<void> {
    const dataSource = this.repository.manager?.connection;
    if (this.connecting) return this.connecting;
    if (!dataSource || dataSource.isInitialized) return Promise.resolve();
    const options = dataSource.options as
      { type?: string; connectTimeoutMS?: number; extra?: { connectionTimeoutMillis?: number } } | undefined;
    if (options?.type === 'postgres' && options.connectTimeoutMS === undefined && options.extra?.connectionTimeoutMillis === undefined) {
      dataSource.setOptions({ connectTimeoutMS: Math.max(this.timeoutMs, CONNECT_FLOOR_MS) });
    }
    migrating.add(dataSource);
    this.connecting = dataSource
      .initialize()
      .then(() => undefined)
      .finally(() => {
        migrating.delete(dataSource);
        this.connecting = undefined;
      });
    return this.connecting;
  }

  /**
   * The audit table, quoted, with its schema when the entity names one.
   *
   * @example
   * writer.table(); // '"audit_log"'
   */
  table(): string {
    return quoteTablePath(this.repository.metadata.tablePath);
  }
}

/** DataSources the module is initializing now: TypeORM calls them initialized before their migrations have run. */
const migrating = new WeakSet<object>();

/**
 * Whether the module is initializing `dataSource` now (its migrations may not have run yet): the
 * read side answers as for a database not connected yet.
 *
 * @example
 * if (!dataSource.isInitialized || initializingByModule(dataSource)) throw AuditReadError.unavailable();
 */
export function initializingByModule(dataSource: object): boolean {
  return migrating.has(dataSource);
}

/**
 * The error of a write not committed within the write timeout (code {@link WRITE_TIMEOUT_CODE}).
 *
 * @example
 * writeTimeoutError(2000).message; // 'audit write not committed within 2000 ms'
 */
export function writeTimeoutError(timeoutMs: number): Error & { code: string } {
  return Object.assign(new Error(`audit write not committed within ${timeoutMs} ms`), { code: WRITE_TIMEOUT_CODE });
}

/** Rejects with {@link writeTimeoutError} when `promise` has not settled within `ms` (an answer that came during a stall of the loop is taken). */
function withTimeout<T>(promise: Promise<T>, ms: number, timeoutMs: number): Promise<T> {
  let cancel: (() => void) | undefined;
  const timeout = new Promise<never>((_, reject) => {
    cancel = stallTolerantDeadline(Math.max(0, ms), () => reject(writeTimeoutError(timeoutMs)));
  });
  // The losing write may still settle later; its outcome is already accounted for.
  promise.catch(() => undefined);
  return Promise.race([promise, timeout]).finally(() => cancel?.());
}
