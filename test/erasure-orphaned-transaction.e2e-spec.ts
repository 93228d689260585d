import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AuditService } from '../src/audit';
import { eventually } from './support/app';
import { createAuditDatabase } from './support/audit-database';
import { startErasureApp } from './support/erasure-app';
import { PartitionProxy } from './support/partition-proxy';
import { sleep, TestPostgres } from './support/postgres';

const WRITE_TIMEOUT_MS = 200;

// docs/PRIVACY.md: an erase() the network leaves unanswered fails with AUDIT_DB_TIMEOUT, and
// "Erasing the subject again is safe either way": once the network is back, erasing the subject
// again goes through, even when the partition cut the first erase() off after audit_log_erase()
// ran on the server. Its transaction sets idle_in_transaction_session_timeout (its round trip's
// deadline plus a second), so the server ends the orphaned session, and its row locks, soon after,
// not when the server's TCP keepalive gives up (over two hours on Linux defaults).
describe('an erase() partitioned inside its transaction', () => {
  const entryKey = randomBytes(32).toString('base64');
  let db: TestPostgres;
  let proxy: PartitionProxy;
  let app: INestApplication | undefined;
  let blocker: Client | undefined;

  const rowsOf = (userId: string) =>
    db.query<{ user_id: string }>(`SELECT user_id FROM audit_log WHERE entity_id = $1 ORDER BY id`, [userId], 'audit');

  beforeAll(async () => {
    db = await TestPostgres.start();
    const url = await createAuditDatabase(db, 'audit', { user: 'audit_writer', password: 'writer-pw' });
    await db.query(`GRANT EXECUTE ON FUNCTION audit_log_erase(text, text, text, uuid, boolean) TO audit_writer`, [], 'audit');
    proxy = await PartitionProxy.start(db.port);
    app = await startErasureApp(url.replace(`:${db.port}/`, `:${proxy.port}/`), {
      writeTimeoutMs: WRITE_TIMEOUT_MS,
      retryBackoffMs: 50,
      retryBackoffMaxMs: 200,
      privacy: { personalData: ['metadata.ip'] },
      integrity: { intervalMs: 3_600_000, entryKeys: [{ id: 'k1', secret: entryKey }] },
    });
    await app.get(AuditService).log({ action: 'profile_viewed', entityType: 'Profile', entityId: 'u-1', userId: 'u-1', ip: '203.0.113.7' });
    await eventually(async () => (await rowsOf('u-1')).length === 1, 10_000, 'the subject row');
  }, 90_000);

  afterAll(async () => {
    await blocker?.end().catch(() => undefined);
    await proxy?.stop();
    await Promise.race([app?.close(), sleep(10_000)]);
    await db?.stop();
  }, 30_000);

  it('once the network is back, erasing the subject again goes through', async () => {
    const audit = (app as INestApplication).get(AuditService);
    // Hold audit_log so that the erasure waits inside its transaction, at audit_log_erase().
    blocker = new Client({ connectionString: db.url('audit') });
    await blocker.connect();
    await blocker.query('BEGIN; LOCK TABLE audit_log IN SHARE MODE');
    const first = audit.erase({ userId: 'u-1', requestedBy: 'dpo' }).then(
      (value) => ({ value }),
      (error: Error & { code?: string }) => ({ error: { code: error.code, message: error.message } }),
    );
    await eventually(
      async () =>
        (
          await db.query(
            `SELECT 1 FROM pg_stat_activity WHERE datname = 'audit' AND query LIKE '%audit_log_erase%' AND wait_event_type = 'Lock'`,
            [],
            'audit',
          )
        ).length > 0,
      15_000,
      'the erasure waiting inside its transaction',
    );
    // The network goes; the function then runs on the server, its answer dropped.
    proxy.partition();
    await blocker.query('COMMIT');
    await blocker.end();
    blocker = undefined;
    await sleep(1000);
    proxy.heal();
    expect(await first).toEqual({ error: { code: 'AUDIT_DB_TIMEOUT', message: expect.stringContaining('nothing was erased') } });

    const next = await eventually(
      async () => {
        const outcome = await audit.erase({ userId: 'u-1', requestedBy: 'dpo' }).then(
          (value) => ({ value }),
          (error: Error & { code?: string }) => ({ error: { code: error.code, message: error.message } }),
        );
        return 'value' in outcome && outcome;
      },
      40_000,
      'an erasure after the partition',
    ).catch(async (error: Error) => {
      const orphans = await db.query(
        `SELECT state, (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid)::int AS locks
           FROM pg_stat_activity a WHERE datname = 'audit' AND state LIKE 'idle in transaction%'`,
        [],
        'audit',
      );
      return `${error.message}; sessions idle in transaction: ${JSON.stringify(orphans)}`;
    });
    expect(next).toEqual({ value: expect.objectContaining({ erased: 1 }) });
    expect(await rowsOf('u-1')).toEqual([{ user_id: '[ERASED]' }]);
  }, 90_000);
});
