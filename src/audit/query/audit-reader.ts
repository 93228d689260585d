import { type Repository } from 'typeorm';
import { quoteTablePath } from '../audit-insert-sql';
import { type AuditLog } from '../audit-log.entity';
import { AuditReadError } from '../audit.errors';
import { connectionSecrets, sanitizeDbError } from '../db-error';
import { type AuditReadPool } from './audit-read-pool';
import { type PreparedRead } from './audit-query.sql';

/** What `pg` answers a query string: one result, or one per statement. */
export type ReadResult<R> = { rows: R[] } | { rows: R[] }[];

/** The part of a `pg` pooled client the reads use. */
export interface ReadClient {
  query<R = Record<string, unknown>>(text: string): Promise<ReadResult<R>>;
  /** Gives the connection back to its pool, or closes it (`true`, or an error); a second call does nothing. */
  release(destroy?: boolean | Error): void;
  /** The statements prepared on its connection so far (by name); absent: none is prepared there. */
  prepared?: Set<string>;
}

/**
 * The rows of the last statement of a query string.
 *
 * @example
 * lastRows(await client.query('SET LOCAL statement_timeout = 5000; SELECT 1 AS one')); // [{ one: 1 }]
 */
export function lastRows<R>(result: ReadResult<R>): R[] {
  return Array.isArray(result) ? (result[result.length - 1]?.rows ?? []) : result.rows;
}

/**
 * Runs reads of `audit_log` on the read side's own pool ({@link AuditReadPool}), never on the
 * connections the writer uses. A read is one query string,
 * `SET LOCAL statement_timeout` and the SELECT, which PostgreSQL runs as one implicit transaction
 * (one round trip; the setting ends with it), under a timer of the same length that also bounds
 * the wait for a connection. Failures become an {@link AuditReadError} whose message is
 * sanitized. A read never changes `AuditService`'s state, and a failed read does not mark the
 * database down.
 *
 * @example
 * const reader = new AuditReader(repository, 5000, new AuditReadPool(() => repository.manager.connection, 4, 5000));
 * const rows = await reader.read<{ n: string }>('SELECT count(*) AS n FROM audit_log');
 */
export class AuditReader {
  constructor(
    private readonly repository: Repository<AuditLog>,
    readonly timeoutMs: number,
    private readonly pool: AuditReadPool,
  ) {}

  /** `audit_log`, quoted, with its schema when the entity names one. */
  table(): string {
    return quoteTablePath(this.repository.metadata.tablePath);
  }

  /**
   * The rows of `select` (one statement, values inlined as literals), within the read timeout; or,
   * given `prepared` (the same read), of that statement, prepared the first time on its connection.
   */
  read<R>(select: string, prepared?: PreparedRead): Promise<R[]> {
    let held: ReadClient | undefined;
    return this.withTimeout(
      async (settle, late) => {
        const client = await this.connect().catch((error: unknown) => Promise.reject(settle(error)));
        if (late()) return abandon(client);
        held = client;
        try {
          const run = (statement: string) => client.query<R>(`SET LOCAL statement_timeout = ${this.timeoutMs}; ${statement}`);
          const known = client.prepared;
          let rows: R[];
          if (!prepared || !known) rows = lastRows(await run(select));
          else {
            try {
              rows = lastRows(await run(preparedSql(prepared, known.has(prepared.name))));
              known.add(prepared.name);
            } catch (error) {
              // A pooler in transaction mode (PgBouncer) does not keep a session's prepared statements: the read as literal SQL.
              if (!PREPARED_STATEMENT_CODES.has((error as { code?: string }).code ?? '')) throw error;
              rows = lastRows(await run(select));
            }
          }
          client.release();
          return rows;
        } catch (error) {
          // The connection may be broken: it is not given back to the pool.
          client.release(true);
          throw settle(error);
        }
      },
      // At the deadline the connection is closed, not left to a query that may never return (a silent partition).
      () => held?.release(AuditReadError.timeout(this.timeoutMs)),
    );
  }

  /** A connection of its own (for a cursor held across calls), within the read timeout; release it. */
  connection(): Promise<ReadClient> {
    return this.withTimeout(async (settle, late) => {
      let client: ReadClient;
      try {
        client = await this.connect();
      } catch (error) {
        throw settle(error);
      }
      return late() ? abandon(client) : client;
    });
  }

  /**
   * `promise`, or an {@link AuditReadError} when it has not settled within the read timeout; then
   * `client` (the connection `promise` runs on) is closed, so that its pool slot is given back.
   */
  within<T>(promise: Promise<T>, client?: ReadClient): Promise<T> {
    return this.withTimeout(
      () => promise,
      () => client?.release(AuditReadError.timeout(this.timeoutMs)),
    );
  }

  /** An {@link AuditReadError} for any failure of a read. */
  readError(error: unknown): AuditReadError {
    if (error instanceof AuditReadError) return error;
    const sanitized = sanitizeDbError(error, connectionSecrets(this.repository.manager?.connection?.options));
    return sanitized.code === '57014' ? AuditReadError.timeout(this.timeoutMs) : AuditReadError.failed(sanitized);
  }

  private connect(): Promise<ReadClient> {
    return this.pool.connect();
  }

  /** Races `run` against the read timeout, calling `expire` at the deadline; `run` gives back a client it obtains after it (`late()`). */
  private withTimeout<T>(
    run: (settle: (error: unknown) => AuditReadError, late: () => boolean) => Promise<T>,
    expire: () => void = () => undefined,
  ): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    let expired = false;
    const work = run(
      (error) => this.readError(error),
      () => expired,
    );
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        expired = true;
        reject(AuditReadError.timeout(this.timeoutMs));
        expire();
      }, this.timeoutMs);
      timer.unref();
    });
    work.catch(() => undefined);
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
  }
}

/** A prepared statement the server does not have (26000), or has already (42P05). */
const PREPARED_STATEMENT_CODES = new Set(['26000', '42P05']);

/** `EXECUTE` of a prepared read, its `PREPARE` first when its connection has not prepared it yet. */
function preparedSql(read: PreparedRead, prepared: boolean): string {
  const execute = `EXECUTE ${read.name}(${read.args.join(', ')})`;
  return prepared ? execute : `PREPARE ${read.name} AS ${read.text}; ${execute}`;
}

/** Gives back a connection that came after its read's deadline; the caller has already been answered. */
function abandon(client: ReadClient): never {
  client.release();
  throw new Error('read abandoned after its deadline');
}
