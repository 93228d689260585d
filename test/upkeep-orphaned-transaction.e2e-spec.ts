import { type INestApplication } from '@nestjs/common';
import { AuditPartitions, AuditQueryService } from '../src/audit';
import { eventually } from './support/app';
import { startSealingApp } from './support/integrity';
import { PartitionProxy } from './support/partition-proxy';
import { sleep, TestPostgres } from './support/postgres';

// docs/LIFECYCLE.md: the upkeep's function attaches a month "with ACCESS EXCLUSIVE on the new table
// and on the default partition", and "Inserts then wait only for the function's own work": an upkeep
// cut off by a silent partition before its COMMIT leaves the server's session idle in transaction,
// holding that lock, and every read of the trail waits for it. The upkeep's transaction sets
// idle_in_transaction_session_timeout (its round trip's deadline plus a second), so the server ends
// it soon after and reads answer again once the network is back, not when TCP keepalive gives up.
describe('partition upkeep partitioned inside its transaction', () => {
  let db: TestPostgres;
  let proxy: PartitionProxy;
  let app: INestApplication | undefined;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('trail');
    proxy = await PartitionProxy.start(db.port);
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
    await Promise.race([app?.close(), sleep(10_000)]);
    await db?.stop();
  }, 30_000);

  it('once the network is back, a page of the trail is read again', async () => {
    const url = db.url('trail').replace(`:${db.port}/`, `:${proxy.port}/`);
    app = await startSealingApp(url, { writeTimeoutMs: 200, readTimeoutMs: 1000, integrity: { intervalMs: 3_600_000 } });
    const queries = app.get(AuditQueryService);
    expect((await queries.search({ entityType: 'NDA' })).items).toEqual([]);

    // The newest month ahead is made again by the next upkeep; the month's ATTACH is slowed down
    // (2 s once it holds the default partition, well inside its 5 s statement timeout) so that the network can go while it holds its locks.
    const [{ newest }] = await db.query<{ newest: string }>(
      `SELECT max(c.relname) AS newest FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_log'::regclass AND c.relname <> 'audit_log_default' AND c.relname ~ '[0-9]'`,
      [],
      'trail',
    );
    await db.query(`ALTER TABLE audit_log DETACH PARTITION ${newest}`, [], 'trail');
    await db.query(`DROP TABLE ${newest}`, [], 'trail');
    await db.query(
      `CREATE FUNCTION slow_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF current_setting('upkeep_test.slept', true) IS DISTINCT FROM 'yes' AND EXISTS (SELECT FROM pg_catalog.pg_locks WHERE pid = pg_catalog.pg_backend_pid()
              AND relation = 'public.audit_log_default'::regclass AND mode = 'AccessExclusiveLock') THEN
           PERFORM pg_catalog.set_config('upkeep_test.slept', 'yes', true);
           PERFORM pg_catalog.pg_sleep(2);
         END IF;
       END $$;
       CREATE EVENT TRIGGER slow_attach ON ddl_command_end EXECUTE FUNCTION slow_ddl()`,
      [],
      'trail',
    );
    const upkeep = app.get(AuditPartitions).maintainNow();
    await eventually(
      async () =>
        (await db.query(`SELECT 1 FROM pg_stat_activity WHERE datname = 'trail' AND wait_event = 'PgSleep'`, [], 'trail')).length > 0,
      15_000,
      'the upkeep attaching a month',
    );
    proxy.partition();
    await sleep(1000);
    proxy.heal();
    await upkeep;
    await db.query(`DROP EVENT TRIGGER slow_attach`, [], 'trail');

    const read = await eventually(
      () =>
        queries.search({ entityType: 'NDA' }).then(
          () => 'read',
          () => false,
        ),
      30_000,
      'a page read after the partition',
    ).catch(async (error: Error) => {
      const holders = await db.query(
        `SELECT a.state, l.mode FROM pg_locks l JOIN pg_stat_activity a USING (pid)
          WHERE l.relation = 'audit_log_default'::regclass AND l.granted AND a.state LIKE 'idle in transaction%'`,
        [],
        'trail',
      );
      return `${error.message}; audit_log_default held by: ${JSON.stringify(holders)}`;
    });
    expect(read).toBe('read');
  }, 120_000);
});
