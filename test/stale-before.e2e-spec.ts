import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import { DataSource, type QueryRunner } from 'typeorm';
import { auditScope, AuditService } from '../src/audit';
import { TestPostgres } from './support/postgres';
import { Invoice, startTxApp } from './support/tx-app';

const DATABASE = 'before';

// TypeORM loads the row a save() updates before the save's transaction begins (and, inside your
// transaction, without a lock): a writer that commits in between makes `before` stale. The README
// says so and gives the remedy, a pessimistic write lock in the transaction; both are shown here.
describe('the `before` of an update under a concurrent writer', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let dataSource: DataSource;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startTxApp(db, { database: DATABASE, audit: { mode: 'sync' } });
    dataSource = app.get(DataSource);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  /** Another writer: the row updated to `number` and locked, until the returned runner commits. */
  async function concurrentWriter(id: string, number: string): Promise<QueryRunner> {
    const runner = dataSource.createQueryRunner();
    await runner.startTransaction();
    await runner.query('UPDATE invoice SET number = $1 WHERE id = $2', [number, id]);
    return runner;
  }

  /** Resolves once a session waits for a row lock (the save or the locking read below). */
  async function waitingForLock(): Promise<void> {
    for (;;) {
      const waiting = await db.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'`, [], DATABASE);
      if (waiting.length > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Runs `update` in a scope and returns the `[before, after]` of `number` on the row it logged. */
  async function numberPair(id: string, update: () => Promise<unknown>, other: QueryRunner): Promise<unknown> {
    const requestId = `before-${id}-${Math.random()}`;
    const done = auditScope(async () => {
      await update();
      await app.get(AuditService).log({ action: 'invoice_renumbered', requestId });
    });
    await waitingForLock();
    await other.commitTransaction();
    await other.release();
    await done;
    const [row] = await db.query<{ changes: { entities: { fields: { number: unknown } }[] } }>(
      'SELECT changes FROM audit_log WHERE request_id = $1',
      [requestId],
      DATABASE,
    );
    return row.changes.entities[0].fields.number;
  }

  it('is the row as loaded before the save, not as replaced, with a plain save()', async () => {
    const invoice = await dataSource.getRepository(Invoice).save({ number: 'v0' });
    const other = await concurrentWriter(invoice.id, 'v1');
    const pair = await numberPair(invoice.id, () => dataSource.getRepository(Invoice).save({ id: invoice.id, number: 'v2' }), other);
    expect(pair).toEqual(['v0', 'v2']);
  });

  it('is the row replaced when it is read with a pessimistic write lock in the save’s transaction', async () => {
    const invoice = await dataSource.getRepository(Invoice).save({ number: 'w0' });
    const other = await concurrentWriter(invoice.id, 'w1');
    const pair = await numberPair(
      invoice.id,
      () =>
        dataSource.transaction(async (manager) => {
          const locked = await manager.findOneOrFail(Invoice, { where: { id: invoice.id }, lock: { mode: 'pessimistic_write' } });
          locked.number = 'w2';
          await manager.save(locked);
        }),
      other,
    );
    expect(pair).toEqual(['w1', 'w2']);
  });
});
