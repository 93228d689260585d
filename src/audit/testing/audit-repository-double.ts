import { type Repository } from 'typeorm';
import { type AuditLog } from '../audit-log.entity';

/**
 * What the double does with the next `insert`.
 *
 * @example
 * const next: AuditRepositoryBehaviour = 'hang';
 * failingAuditRepository().heal(); // back to 'ok'
 */
export type AuditRepositoryBehaviour = 'fail' | 'hang' | 'ok';

/**
 * Where a healthy double sends rows: the real repository, to have them in the table.
 *
 * @example
 * const sink: AuditRowSink = moduleRef.get(getRepositoryToken(AuditLog));
 * const double = flakyAuditRepository({ failures: 2, sink });
 */
export type AuditRowSink = Pick<Repository<AuditLog>, 'insert'>;

/**
 * A stand-in for the `AuditLog` repository, for `overrideProvider(getRepositoryToken(AuditLog))`:
 * the module writes through its `insert`, which fails, hangs or succeeds as the test says. A
 * healthy double keeps the rows it was given (once per id, as `ON CONFLICT DO NOTHING` would) and,
 * when given a `sink` such as the real repository, passes them on.
 *
 * @example
 * const audit = failingAuditRepository();
 * const app = await Test.createTestingModule({ imports: [AppModule] })
 *   .overrideProvider(getRepositoryToken(AuditLog)).useValue(audit)
 *   .compile();
 * // … requests: the service goes down and buffers …
 * audit.heal(); // the next try commits and the buffer is flushed through audit.insert
 */
export class AuditRepositoryDouble {
  /** Rows taken while healthy, by id. */
  readonly rows = new Map<string, AuditLog>();
  /** Calls of `insert`, with the rows each was given. */
  readonly calls: AuditLog[][] = [];
  private error: Error;
  private failuresLeft = Infinity;
  private readonly sink: AuditRowSink | undefined;

  constructor(
    private behaviour: AuditRepositoryBehaviour = 'ok',
    options: { error?: Error; failures?: number; sink?: AuditRowSink } = {},
  ) {
    this.error = options.error ?? connectionRefused();
    if (options.failures !== undefined) this.failuresLeft = options.failures;
    this.sink = options.sink;
  }

  /** The repository method the module calls. */
  async insert(rows: AuditLog[]): Promise<{ identifiers: { id: string }[] }> {
    this.calls.push(rows);
    if (this.behaviour === 'fail' && this.failuresLeft > 0) {
      this.failuresLeft -= 1;
      if (this.failuresLeft === 0) this.behaviour = 'ok';
      throw this.error;
    }
    if (this.behaviour === 'hang') return new Promise(() => undefined);
    const fresh = rows.filter((row) => !this.rows.has(row.id));
    // The rows are whole entities; TypeORM types insert() for partial ones.
    if (this.sink && fresh.length > 0) await this.sink.insert(fresh as Parameters<AuditRowSink['insert']>[0]);
    for (const row of fresh) this.rows.set(row.id, row);
    return { identifiers: rows.map((row) => ({ id: row.id })) };
  }

  /** From now on every insert rejects with `error` (default: a refused connection). */
  fail(error: Error = this.error): this {
    this.behaviour = 'fail';
    this.error = error;
    this.failuresLeft = Infinity;
    return this;
  }

  /** From now on every insert never settles, as against a locked table: the write timeout decides. */
  hang(): this {
    this.behaviour = 'hang';
    return this;
  }

  /** From now on every insert succeeds. */
  heal(): this {
    this.behaviour = 'ok';
    return this;
  }
}

/**
 * A double whose every insert rejects, as a database that refuses connections.
 *
 * @example
 * Test.createTestingModule({ imports: [AppModule] }).overrideProvider(getRepositoryToken(AuditLog)).useValue(failingAuditRepository());
 */
export function failingAuditRepository(error?: Error): AuditRepositoryDouble {
  return new AuditRepositoryDouble('fail', { error });
}

/**
 * A double whose every insert never settles, as a locked table: each write ends by the module's
 * write timeout.
 *
 * @example
 * Test.createTestingModule({ imports: [AppModule] }).overrideProvider(getRepositoryToken(AuditLog)).useValue(hangingAuditRepository());
 */
export function hangingAuditRepository(): AuditRepositoryDouble {
  return new AuditRepositoryDouble('hang');
}

/**
 * A double that fails its first `failures` inserts (default 1), then succeeds: a short outage
 * the module must ride out and recover from by itself. `sink` (the real repository, say) receives
 * the rows once it is healthy.
 *
 * @example
 * const audit = flakyAuditRepository({ failures: 3 });
 */
export function flakyAuditRepository(options: { failures?: number; error?: Error; sink?: AuditRowSink } = {}): AuditRepositoryDouble {
  return new AuditRepositoryDouble('fail', { failures: options.failures ?? 1, error: options.error, sink: options.sink });
}

function connectionRefused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
}
