/** Stable code of a sealer's step that missed its client-side deadline. */
export const SEAL_TIMEOUT_CODE = 'AUDIT_SEAL_TIMEOUT';

/**
 * A step of a sealing attempt (taking a connection, a round trip) that did not finish within its
 * deadline: the connection it used, if any, was destroyed and never goes back to the pool.
 *
 * @example
 * new SealTimeoutError('query', 8000).message; // 'AUDIT_SEAL_TIMEOUT: the sealer's query got no answer within 8000 ms'
 */
export class SealTimeoutError extends Error {
  override readonly name = 'SealTimeoutError';
  readonly code = SEAL_TIMEOUT_CODE;

  constructor(
    readonly step: 'connect' | 'query' | 'attempt',
    readonly timeoutMs: number,
  ) {
    super(
      step === 'connect'
        ? `${SEAL_TIMEOUT_CODE}: the sealer got no connection within ${timeoutMs} ms`
        : step === 'query'
          ? `${SEAL_TIMEOUT_CODE}: the sealer's query got no answer within ${timeoutMs} ms`
          : `${SEAL_TIMEOUT_CODE}: the sealing attempt made no progress for ${timeoutMs} ms`,
    );
  }
}

/** The parts of a `pg` client the sealer uses. */
export interface SealerClient {
  query(text: string, values?: unknown[]): Promise<unknown>;
  release(error?: Error): void;
  once(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
  connection?: { stream?: { destroy(): void } };
}

/** The parts of a `pg` pool the sealer uses (`_clients`: pg-pool's own list, read only to find a connection it opens for us). */
export interface SealerPool {
  connect(): Promise<SealerClient>;
  _clients?: unknown;
}

/**
 * One pool connection for one sealing attempt, with client-side deadlines, as the writer has
 * (see `bounded-pool-query.ts`): taking it may last `connectMs` (a connection the pool opens for
 * it is destroyed past that), each round trip `roundTripMs`. A round trip past its deadline, or
 * {@link SealerSession.abandon}, destroys the connection's socket and takes it out of the pool, so
 * that a silent network partition never keeps the sealer waiting and the pool never hands that
 * connection out again. It offers what `sealOnce` uses of a TypeORM `QueryRunner`.
 *
 * @example
 * const session = await SealerSession.open(pool, 5000, 32_000);
 * try { await sealOnce(session, 'public.audit_log', options); } finally { session.release(); }
 */
export class SealerSession {
  isTransactionActive = false;
  private done = false;
  private failure: Error | null = null;
  private readonly onError = (error: Error) => this.discard(error);

  private constructor(
    private readonly client: SealerClient,
    private readonly roundTripMs: number,
    private readonly onProgress: () => void,
  ) {
    // A socket error while checked out is ours to handle: unhandled, it would crash the process.
    client.once('error', this.onError);
  }

  /** Checks a connection out of `pool` within `connectMs`; `onProgress` is told whenever a round trip settles. */
  static open(pool: SealerPool, connectMs: number, roundTripMs: number, onProgress: () => void = () => undefined): Promise<SealerSession> {
    const before = Array.isArray(pool._clients) ? pool._clients.length : -1;
    const checkout = pool.connect();
    const after = pool._clients;
    // pg-pool adds a connection it opens to `_clients` at once, before it connects.
    const fresh = Array.isArray(after) && before >= 0 && after.length === before + 1 ? (after[before] as SealerClient) : undefined;
    return new Promise((resolve, reject) => {
      let expired = false;
      const timer = setTimeout(() => {
        expired = true;
        if (fresh) destroy(fresh);
        reject(new SealTimeoutError('connect', connectMs));
      }, connectMs).unref();
      checkout.then(
        (client) => {
          clearTimeout(timer);
          // Ready after the deadline: back to the pool, for a later attempt.
          if (expired) client.release();
          else resolve(new SealerSession(client, roundTripMs, onProgress));
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error as Error);
        },
      );
    });
  }

  /** Rows of the statement (of the last one, for several in one string); rejects past `roundTripMs`. */
  query(sql: string, parameters?: unknown[]): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const sent = this.client.query(sql, parameters);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const error = new SealTimeoutError('query', this.roundTripMs);
        this.discard(error);
        reject(error);
      }, this.roundTripMs).unref();
      sent.then(
        (result) => {
          clearTimeout(timer);
          this.onProgress();
          const last = (Array.isArray(result) ? result.at(-1) : result) as { rows?: unknown[] } | undefined;
          resolve(last?.rows ?? []);
        },
        (error: unknown) => {
          clearTimeout(timer);
          // An error PostgreSQL answered leaves the connection usable; any other one does not.
          if (!isServerError(error)) this.discard(error instanceof Error ? error : new Error(String(error)));
          reject(error as Error);
        },
      );
    });
  }

  async startTransaction(): Promise<void> {
    await this.query('BEGIN');
    this.isTransactionActive = true;
  }

  async commitTransaction(): Promise<void> {
    try {
      await this.query('COMMIT');
    } finally {
      this.isTransactionActive = false;
    }
  }

  async rollbackTransaction(): Promise<void> {
    this.isTransactionActive = false;
    await this.query('ROLLBACK');
  }

  /** Back to the pool (out of it, if the connection failed). */
  release(): void {
    if (this.done) return;
    this.done = true;
    this.client.removeListener('error', this.onError);
    this.client.release(this.failure ?? undefined);
  }

  /** Gives the connection up: its socket destroyed, out of the pool; a pending query fails at once. */
  abandon(error: Error): void {
    this.discard(error);
  }

  private discard(error: Error): void {
    this.failure ??= error;
    this.release();
    destroy(this.client);
  }
}

function destroy(client: SealerClient): void {
  client.connection?.stream?.destroy();
}

function isServerError(error: unknown): boolean {
  const e = error as { severity?: unknown; code?: unknown } | null;
  return typeof e?.severity === 'string' && typeof e.code === 'string';
}
