import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { type DataSource, type Repository } from 'typeorm';
import { type AuditLog } from '../audit-log.entity';
import { type ResolvedAuditOptions } from '../audit-options';
import { AUDIT_OPTIONS, AUDIT_REPOSITORY } from '../audit.constants';
import { connectionSecrets } from '../db-error';
import { type SealerPool } from './sealer-session';

/** The part of a `pg` pool this class uses beyond {@link SealerPool}. */
interface PgPool extends SealerPool {
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'connect', listener: (client: { on(event: 'error', listener: (error: Error) => void): unknown }) => void): unknown;
}

/** Connections of the sealer's own pool: one for sealing, one for the module's retention. */
const SEALER_POOL_SIZE = 2;

/**
 * The connection the sealer and the module's retention write seals through: with
 * `integrity.sealerDatabaseUrl`, a small `pg` pool of its own on that URL (made at first use, with
 * the `pg` of the app's DataSource, ended at shutdown); without it, the DataSource's own pool.
 * So that the app's role need not hold INSERT on `audit_seal` (docs/INTEGRITY.md, "Roles").
 *
 * @example
 * const pool = app.get(AuditSealerConnection).pool(); // null until the DataSource is connected
 */
@Injectable()
export class AuditSealerConnection implements OnApplicationShutdown {
  private own: PgPool | undefined;
  private ended = false;

  constructor(
    @Inject(AUDIT_OPTIONS) private readonly options: ResolvedAuditOptions,
    @Inject(AUDIT_REPOSITORY) private readonly repository: Repository<AuditLog>,
  ) {}

  /** Whether seals are written on credentials of their own (`integrity.sealerDatabaseUrl`). */
  get separate(): boolean {
    return this.options.integrity.sealerDatabaseUrl !== null;
  }

  /** What a database error may not show: the secrets of both the app's and the sealer's connection. */
  secrets(): string[] {
    const app = connectionSecrets(this.repository.manager?.connection?.options);
    const url = this.options.integrity.sealerDatabaseUrl;
    return url ? [...connectionSecrets({ url }), ...app].sort((a, b) => b.length - a.length) : app;
  }

  /** The pool to seal through; null while the app's DataSource is not connected, or after shutdown. */
  pool(): SealerPool | null {
    const dataSource = this.repository.manager?.connection as DataSource | undefined;
    if (this.ended || !dataSource?.isInitialized) return null;
    const writers = (dataSource.driver as { master?: SealerPool }).master;
    if (typeof writers?.connect !== 'function') throw new Error('the DataSource has no PostgreSQL pool to seal through');
    const url = this.options.integrity.sealerDatabaseUrl;
    if (!url) return writers;
    if (!this.own) {
      const Pool = writers.constructor as new (options: Record<string, unknown>) => PgPool;
      const pool = new Pool({ connectionString: url, max: SEALER_POOL_SIZE, min: 0, allowExitOnIdle: true });
      // A connection the server closes fails the sealer's next attempt (reported then), never the process.
      pool.on('error', () => undefined);
      pool.on('connect', (client) => client.on('error', () => undefined));
      this.own = pool;
    }
    return this.own;
  }

  /** Ends the pool of its own, after the sealer and retention stopped (their shutdown hooks run first). */
  async onApplicationShutdown(): Promise<void> {
    this.ended = true;
    const pool = this.own;
    this.own = undefined;
    await pool?.end().catch(() => undefined);
  }
}
