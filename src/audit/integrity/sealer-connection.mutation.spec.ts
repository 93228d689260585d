import { EventEmitter } from 'node:events';
import { type Repository } from 'typeorm';
import { type AuditLog } from '../audit-log.entity';
import { type ResolvedAuditOptions } from '../audit-options';
import { AuditSealerConnection } from './sealer-connection';

/** A pool class as `pg`'s: what it was made with, its listeners, and whether it was ended. */
class FakePool extends EventEmitter {
  static made: FakePool[] = [];
  ended = 0;
  constructor(readonly options: Record<string, unknown> = {}) {
    super();
    FakePool.made.push(this);
  }
  connect(): Promise<never> {
    return Promise.reject(new Error('not here'));
  }
  end(): Promise<void> {
    this.ended += 1;
    return this.options.failEnd ? Promise.reject(new Error('already ended')) : Promise.resolve();
  }
}

const APP_URL = 'postgres://app:app-password@db.internal:5432/audit';
const SEALER_URL = 'postgres://sealer:sealer-password-longer@db.internal:5432/audit';

function connection(sealerDatabaseUrl: string | null, dataSource: Record<string, unknown> | null = {}) {
  const master = new FakePool();
  const connected = dataSource && { isInitialized: true, driver: { master }, options: { url: APP_URL }, ...dataSource };
  const repository = (connected ? { manager: { connection: connected } } : {}) as unknown as Repository<AuditLog>;
  const options = { integrity: { sealerDatabaseUrl } } as unknown as ResolvedAuditOptions;
  return { sealer: new AuditSealerConnection(options, repository), master };
}

describe('AuditSealerConnection: the pool seals are written through', () => {
  beforeEach(() => {
    FakePool.made = [];
  });

  it('is separate only with integrity.sealerDatabaseUrl', () => {
    expect(connection(SEALER_URL).sealer.separate).toBe(true);
    expect(connection(null).sealer.separate).toBe(false);
  });

  it("seals through the DataSource's pool without a URL of its own", () => {
    const { sealer, master } = connection(null);
    expect(sealer.pool()).toBe(master);
    expect(FakePool.made).toEqual([master]);
  });

  it('makes one small pool of its own on the URL, with the pg of the DataSource, at first use', () => {
    const { sealer, master } = connection(SEALER_URL);
    const own = sealer.pool();
    expect(own).toBeInstanceOf(FakePool);
    expect(own).not.toBe(master);
    expect((own as FakePool).options).toEqual({ connectionString: SEALER_URL, max: 2, min: 0, allowExitOnIdle: true });
    expect(sealer.pool()).toBe(own);
    expect(FakePool.made).toHaveLength(2);
  });

  it('never lets an error of its pool, or of one of its connections, reach the process', () => {
    const { sealer } = connection(SEALER_URL);
    const own = sealer.pool() as FakePool;
    expect(() => own.emit('error', new Error('terminated by the server'))).not.toThrow();
    const client = new EventEmitter();
    own.emit('connect', client);
    expect(() => client.emit('error', new Error('terminated by the server'))).not.toThrow();
  });

  it('has no pool while the DataSource is not connected, or has no repository manager', () => {
    expect(connection(SEALER_URL, { isInitialized: false }).sealer.pool()).toBeNull();
    expect(connection(null, { isInitialized: false }).sealer.pool()).toBeNull();
    expect(connection(SEALER_URL, null).sealer.pool()).toBeNull();
    expect(FakePool.made).toHaveLength(3);
  });

  it('refuses a DataSource without a PostgreSQL pool', () => {
    for (const driver of [{}, { master: {} }, { master: { connect: 'no' } }]) {
      expect(() => connection(SEALER_URL, { driver }).sealer.pool()).toThrow(
        new Error('the DataSource has no PostgreSQL pool to seal through'),
      );
    }
  });

  it('ends its own pool once at shutdown, and has none after it, even when ending fails', async () => {
    const { sealer } = connection(SEALER_URL);
    const own = sealer.pool() as FakePool;
    await sealer.onApplicationShutdown();
    expect(own.ended).toBe(1);
    expect(sealer.pool()).toBeNull();
    await sealer.onApplicationShutdown();
    expect(own.ended).toBe(1);
    const failing = connection(SEALER_URL);
    (failing.sealer.pool() as FakePool).options.failEnd = true;
    await expect(failing.sealer.onApplicationShutdown()).resolves.toBeUndefined();
  });

  it("shuts down without a pool of its own, and leaves the DataSource's pool to TypeORM", async () => {
    const { sealer, master } = connection(null);
    await expect(sealer.onApplicationShutdown()).resolves.toBeUndefined();
    expect(sealer.pool()).toBeNull();
    expect(master.ended).toBe(0);
    await expect(connection(SEALER_URL).sealer.onApplicationShutdown()).resolves.toBeUndefined();
  });

  it('hides the secrets of both connections from a database error, the longest first', () => {
    const secrets = connection(SEALER_URL).sealer.secrets();
    expect(secrets).toEqual(
      expect.arrayContaining([SEALER_URL, 'sealer-password-longer', 'sealer', APP_URL, 'app-password', 'app', 'db.internal']),
    );
    expect(secrets.map((s) => s.length)).toEqual([...secrets.map((s) => s.length)].sort((a, b) => b - a));
    expect(secrets.indexOf(SEALER_URL)).toBeLessThan(secrets.indexOf(APP_URL));
    expect(secrets.indexOf('sealer-password-longer')).toBeLessThan(secrets.indexOf('app-password'));
    expect(connection(null).sealer.secrets()).not.toContain('sealer');
    expect(connection(null).sealer.secrets()).toContain('app-password');
    expect(connection(SEALER_URL, null).sealer.secrets()).toContain('sealer-password-longer');
  });
});
