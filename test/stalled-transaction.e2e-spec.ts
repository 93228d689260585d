import { DataSource, type EntityManager, type Repository } from 'typeorm';
import { AuditLog, CreateAuditLog1732700000000 } from '../src/audit';
import { AuditEntryNormalizer } from '../src/audit/audit-entry';
import { AuditWriter } from '../src/audit/audit.writer';
import { WRITE_TIMEOUT_CODE } from '../src/audit/db-error';
import { TestPostgres } from './support/postgres';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// A connection that stalls between INSERT and COMMIT (a client paused, a network gone quiet) would
// keep its transaction, and the row locks of its insert, open on the server for ever. The writer's
// transactions carry idle_in_transaction_session_timeout, so the server ends them.
describe('an audit transaction stalled before COMMIT', () => {
  let db: TestPostgres;
  let dataSource: DataSource;
  let unstall: () => void = () => undefined;

  beforeAll(async () => {
    db = await TestPostgres.start();
    dataSource = new DataSource({
      type: 'postgres',
      url: db.url(),
      entities: [AuditLog],
      migrations: [CreateAuditLog1732700000000],
      migrationsRun: true,
    });
    await dataSource.initialize();
  });

  afterAll(async () => {
    unstall();
    await dataSource?.destroy().catch(() => undefined);
    await db?.stop();
  });

  /** The audit repository, with every transaction pausing after its statements, before COMMIT. */
  function stallingRepository(): Repository<AuditLog> {
    const repository = dataSource.getRepository(AuditLog);
    const stalled = new Promise<void>((resolve) => (unstall = resolve));
    const manager = new Proxy(repository.manager, {
      get: (target, key, receiver) =>
        key === 'transaction'
          ? (work: (m: EntityManager) => Promise<void>) =>
              target.transaction(async (m) => {
                await work(m);
                await stalled;
              })
          : (Reflect.get(target, key, receiver) as unknown),
    });
    return new Proxy(repository, { get: (target, key) => (key === 'manager' ? manager : (Reflect.get(target, key) as unknown)) });
  }

  const idleInTransaction = async () =>
    (
      await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'idle in transaction' AND pid <> pg_backend_pid()`,
      )
    )[0].n;

  it('is ended by the server within the write timeout, and the write fails with the module error', async () => {
    const writer = new AuditWriter(stallingRepository(), 1000);
    const { record } = new AuditEntryNormalizer([], 64 * 1024).normalize({ action: 'nda_created', entityId: 'nda-1' });

    const write = writer.insert([record]);
    await sleep(300);
    expect(await idleInTransaction()).toBe(1);
    await expect(write).rejects.toMatchObject({ code: WRITE_TIMEOUT_CODE });
    const deadline = Date.now() + 5000;
    while ((await idleInTransaction()) > 0 && Date.now() < deadline) await sleep(50);
    expect(await idleInTransaction()).toBe(0);
    expect(await db.query('SELECT id FROM audit_log WHERE id = $1', [record.id])).toEqual([]);
  }, 20_000);
});
