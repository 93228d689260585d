import { type DataSource } from 'typeorm';
import { AuditReadError } from '../audit.errors';
import { initializingByModule } from '../audit.writer';
import { type ReadClient } from './audit-reader';

/** The part of a `pg` pooled client the pool's wrapper uses. */
interface PgClient extends ReadClient {
  connection?: { stream?: { destroy(): void } };
}

/** The part of a `pg` pool the read side uses. */
interface PgPool {
  readonly options?: Record<string, unknown>;
  connect(): Promise<PgClient>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'connect', listener: (client: { on(event: 'error', listener: (error: Error) => void): unknown }) => void): unknown;
}

/**
 * The read side's own `pg` pool: at most `size` connections, made with the connection options
 * of the audit DataSource's pool (the same server, user, TLS and settings) but never taken from
 * it, so that readers (a slow export, clients that stop reading) can never hold the connections
 * the writer and the sealer use. Made at the first read, once the DataSource is connected;
 * ended with {@link end} at shutdown. A wait for a connection ends after `timeoutMs`. A connection
 * is released once (later calls do nothing); released with an error (or `true`) it leaves the pool
 * with its socket destroyed, so that a query stuck in a silent partition gives its slot back at once.
 *
 * @example
 * const pool = new AuditReadPool(() => repository.manager.connection, 4, 5000);
 * const client = await pool.connect(); // …; client.release();
 */
export class AuditReadPool {
  private pool: PgPool | undefined;
  private ended = false;

  constructor(
    private readonly dataSource: () => DataSource | undefined,
    private readonly size: number,
    private readonly timeoutMs: number,
  ) {}

  /** A connection of the read pool; rejects with an {@link AuditReadError} while the DataSource is not connected. */
  async connect(): Promise<ReadClient> {
    if (this.ended) throw AuditReadError.closed();
    this.pool ??= this.create();
    return guarded(await this.pool.connect());
  }

  /** Closes the pool's connections (each given back first); reads after it are refused. */
  async end(): Promise<void> {
    this.ended = true;
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end();
  }

  private create(): PgPool {
    const dataSource = this.dataSource();
    const writers = (dataSource?.driver as { master?: Partial<PgPool> } | undefined)?.master;
    // Connecting the DataSource (and running its migrations) is the write path's work: a read waits for it.
    if (!dataSource?.isInitialized || initializingByModule(dataSource) || typeof writers?.connect !== 'function' || !writers.options) {
      throw AuditReadError.unavailable();
    }
    const options: Record<string, unknown> = { ...writers.options };
    // pg keeps the password off the enumerable options (out of logs): carried over by name.
    if ('password' in writers.options) options.password = writers.options.password;
    const Pool = writers.constructor as new (options: Record<string, unknown>) => PgPool;
    const pool = new Pool({ ...options, max: this.size, min: 0, connectionTimeoutMillis: this.timeoutMs, allowExitOnIdle: true });
    // A connection the server closes (a restart, a stalled export's transaction ended) fails its next query, never the process.
    pool.on('error', () => undefined);
    pool.on('connect', (client) => client.on('error', () => undefined));
    return pool;
  }
}

/** The statements prepared on each connection of the pool, for as long as it lives. */
const PREPARED = new WeakMap<PgClient, Set<string>>();

/** `client`, released at most once; a release with an error also destroys its socket (its pending query fails at once). */
function guarded(client: PgClient): ReadClient {
  let released = false;
  const prepared = PREPARED.get(client) ?? new Set<string>();
  PREPARED.set(client, prepared);
  return {
    query: (text) => client.query(text),
    prepared,
    release(destroy) {
      if (released) return;
      released = true;
      client.release(destroy);
      if (destroy) client.connection?.stream?.destroy();
    },
  };
}
