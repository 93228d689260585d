import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AuditLog, CreateAuditLog1732700000000 } from '../src/audit';
import { AuditEntryNormalizer } from '../src/audit/audit-entry';
import { AuditWriter } from '../src/audit/audit.writer';
import { WRITE_TIMEOUT_CODE } from '../src/audit/db-error';
import { TestPostgres } from './support/postgres';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// A client that stalls once its write is sent (a process paused, a network gone quiet) must not
// leave a transaction open on the server, holding the row locks of its insert: the writer's
// batch is one query string that PostgreSQL runs and commits as one implicit transaction, with
// no round trip before COMMIT for a stall to fall into.
describe('an audit write whose client stalls after sending it', () => {
  let db: TestPostgres;
  let dataSource: DataSource;
  const paused: { resume(): void }[] = [];

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
    paused.forEach((stream) => stream.resume());
    await dataSource?.destroy().catch(() => undefined);
    await db?.stop();
  });

  const openTransactions = async () =>
    (
      await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()`,
      )
    )[0].n;

  it('leaves no transaction open on the server, commits the row, and fails the write with the module error', async () => {
    const writer = new AuditWriter(dataSource.getRepository(AuditLog), 500);
    const { record } = new AuditEntryNormalizer([], 64 * 1024).normalize({ action: 'nda_created', entityId: 'nda-1' });
    const query = Client.prototype.query;
    const spy = jest.spyOn(Client.prototype, 'query').mockImplementation(function (this: Client, ...args: unknown[]) {
      const result = (query as (...a: unknown[]) => unknown).apply(this, args);
      // The client stops reading right after sending: its answer never arrives.
      const stream = (this as unknown as { connection: { stream: { pause(): void; resume(): void } } }).connection.stream;
      stream.pause();
      paused.push(stream);
      return result as never;
    });
    let write: Promise<void>;
    try {
      write = writer.insert([record]);
      await sleep(50);
    } finally {
      spy.mockRestore();
    }
    await expect(write).rejects.toMatchObject({ code: WRITE_TIMEOUT_CODE });
    expect(await openTransactions()).toBe(0);
    expect(await db.query('SELECT entity_id FROM audit_log WHERE id = $1', [record.id])).toEqual([{ entity_id: 'nda-1' }]);
  }, 20_000);
});
