import { AuditDbTimeoutError } from '../audit.errors';
import { type DbPool, DbSession } from '../db-session';
import { sealerDeadlines } from '../integrity/sealer-timing';
import { type ErasureContext, type ErasureRequest, type ErasureResult, eraseSubject } from './erasure';

/** What a bounded erasure needs beyond its connection: {@link ErasureContext} without `query`. */
export type BoundedErasureContext = Omit<ErasureContext, 'query'>;

/** A bounded erasure's deadlines: the module's `writeTimeoutMs` (they derive from it), or each given (`audit-erase --timeout-ms`). */
export type ErasureDeadlines = number | { connectMs: number; statementMs: number; roundTripMs: number };

/**
 * Runs {@link eraseSubject} in a transaction of its own on one connection of `pool`, with
 * client-side deadlines derived from `writeTimeoutMs` as the sealer's are (`sealerDeadlines`):
 * taking the connection `max(writeTimeoutMs, 5 s)`, each statement `15 × writeTimeoutMs` (at
 * least 5 s) on the server and that plus `writeTimeoutMs` for its round trip. A server that
 * never answers fails it with {@link AuditDbTimeoutError} (its connection destroyed, out of the
 * pool) instead of holding the caller for ever; before the COMMIT was sent that error says
 * nothing was erased, after it that the outcome is not known. `deadlines` may also give the
 * three bounds themselves. `track` is told of the connection
 * while it is in use, so that shutdown can give it up.
 *
 * @example
 * const result = await eraseWithDeadlines(pool, 2000, { table, normalize, key, userIdPseudonym: null }, { userId: 'u-42' });
 */
export async function eraseWithDeadlines(
  pool: DbPool,
  deadlines: ErasureDeadlines,
  context: BoundedErasureContext,
  request: ErasureRequest,
  track: (session: DbSession | undefined) => void = () => undefined,
): Promise<ErasureResult> {
  const { connectMs, statementMs, roundTripMs } = typeof deadlines === 'number' ? sealerDeadlines(deadlines) : deadlines;
  const session = await DbSession.checkout(pool, {
    connectMs,
    roundTripMs,
    timeout: (step, ms) => AuditDbTimeoutError.erasure(step, ms),
  });
  track(session);
  try {
    await session.query(`BEGIN; SET LOCAL statement_timeout = '${statementMs}ms'`);
    const result = await eraseSubject({ ...context, query: (sql, parameters) => session.query(sql, parameters) }, request);
    try {
      await session.query('COMMIT');
    } catch (error) {
      // An answer (a refusal) means it did not commit; no answer leaves the outcome unknown.
      throw session.failed ? AuditDbTimeoutError.erasureCommit(roundTripMs, result.erasureId) : error;
    }
    return result;
  } catch (error) {
    if (!session.failed) await session.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    track(undefined);
    session.release();
  }
}

/**
 * The erasures of one `AuditService` under way, so that shutdown can end them: it gives them
 * `ms` to finish, then gives their connections up (TypeORM's `destroy()`, which `app.close()`
 * runs next, would otherwise wait for them).
 *
 * @example
 * const erasures = new ErasuresUnderWay();
 * await erasures.run((track) => eraseWithDeadlines(pool, 2000, context, request, track));
 * await erasures.giveUp(2000); // at shutdown
 */
export class ErasuresUnderWay {
  private readonly running = new Set<Promise<unknown>>();
  private readonly sessions = new Set<DbSession>();

  /** Runs `work`, told of the connection it uses through `track`. */
  run<T>(work: (track: (session: DbSession | undefined) => void) => Promise<T>): Promise<T> {
    let current: DbSession | undefined;
    const track = (session: DbSession | undefined) => {
      if (current) this.sessions.delete(current);
      current = session;
      if (session) this.sessions.add(session);
    };
    const running = work(track);
    const settled = running.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(settled);
    void settled.then(() => this.running.delete(settled));
    return running;
  }

  /** Waits at most `ms` for the erasures under way, then gives up the connections of those still waiting. */
  async giveUp(ms: number): Promise<void> {
    if (this.running.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms).unref()));
    await Promise.race([Promise.all(this.running), bound]);
    clearTimeout(timer);
    for (const session of this.sessions) session.abandon(AuditDbTimeoutError.erasure('shutdown', ms));
  }
}
