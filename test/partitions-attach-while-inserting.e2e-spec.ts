import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AuditPartitions, AuditService } from '../src/audit';
import { createAuditDatabase } from './support/audit-database';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';
import { monthPartition, monthStart, startPartitionsApp } from './support/partitions';

// The default partition takes any row no other partition takes, so no entry is refused for want
// of a partition. An insert routed to the default partition that waits for its lock while a
// month's partition is attached is re-checked, once it has the lock, against the default
// partition's new bounds: 23514 "violates partition constraint", with no constraint name. That is
// the partitions changing under the insert, not the entry's content: inserted again, it is routed
// to its month's new partition, never quarantined.
const WRITER = { user: `race_${randomBytes(3).toString('hex')}`, password: 'pw-race' };

describe('an entry written while its month partition is attached', () => {
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let owner: Client;
  let watcher: Client;

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    const writerUrl = await createAuditDatabase(db, 'audit', WRITER);
    app = await startPartitionsApp(writerUrl, { writeTimeoutMs: 10_000 });
    await app.get(AuditPartitions).maintainNow();
    owner = new Client({ connectionString: db.url('audit') });
    await owner.connect();
    watcher = await db.connect('audit');
  }, 120_000);

  afterAll(async () => {
    await owner?.end();
    await watcher?.end();
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('is written to its new partition, not quarantined, when the partition is attached while its insert waits', async () => {
    // The owner's scheduled job (docs/LIFECYCLE.md) keeps six months ahead; its transaction is
    // open while the application logs an entry dated in the fifth month.
    await owner.query('BEGIN');
    await owner.query('SELECT * FROM audit_log_create_partitions(6)');
    const when = new Date(monthStart(5).getTime() + 86_400_000);
    const logged = app.get(AuditService).log({ action: 'nda_created', entityId: 'raced', occurredAt: when });
    // Wait until the module's INSERT waits for the default partition's lock.
    let waited = false;
    for (let i = 0; i < 400 && !waited; i++) {
      const { rows } = await watcher.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO%audit_log%'`,
      );
      waited = rows[0].n > 0;
      if (!waited) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await owner.query('COMMIT');
    expect(waited).toBe(true);
    await logged;

    const stored = await db.query(`SELECT tableoid::regclass::text AS part FROM audit_log WHERE entity_id = 'raced'`, [], 'audit');
    expect(stderr.of('audit.quarantined').map((line) => (line as unknown as { error?: unknown }).error)).toEqual([]);
    expect(stored).toEqual([{ part: monthPartition(when) }]);
  });
});
