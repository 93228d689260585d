import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { type Client } from 'pg';
import { AuditPartitions, AuditSealer, AuditService } from '../src/audit';
import { createAuditDatabase } from './support/audit-database';
import { verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';
import { monthStart, startPartitionsApp } from './support/partitions';

// docs/LIFECYCLE.md promises that the partition function moves the default
// partition's rows of a month "every column kept (`tx` too: seals still verify)". The sealer's
// statement is made to wait for the default partition's lock while the move is uncommitted, and
// runs after it committed (READ COMMITTED: a snapshot newer than its list of partitions could miss
// the moved row in both places). PostgreSQL plans it with the new partition: the row is sealed and
// the trail verifies clean.
const WRITER = { user: `move_${randomBytes(3).toString('hex')}`, password: 'pw-move' };

describe('a row moved out of the default partition while the sealer seals', () => {
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;
  let owner: Client;
  let watcher: Client;

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    const writerUrl = await createAuditDatabase(db, 'audit', WRITER);
    app = await startPartitionsApp(writerUrl, { integrity: { enabled: true, intervalMs: 3_600_000 } });
    await app.get(AuditPartitions).maintainNow();
    owner = await db.connect('audit');
    watcher = await db.connect('audit');
  }, 120_000);

  afterAll(async () => {
    await owner?.end();
    await watcher?.end();
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('is sealed, and the trail verifies clean', async () => {
    const audit = app.get(AuditService);
    const sealer = app.get(AuditSealer);
    // A row dated in the fifth month (default partition), then one dated now (a later transaction).
    await audit.log({ action: 'nda_created', entityId: 'future', occurredAt: new Date(monthStart(5).getTime() + 86_400_000) });
    await audit.log({ action: 'nda_created', entityId: 'now' });

    // The owner's scheduled job keeps six months ahead: it moves the future row; not committed yet.
    await owner.query('BEGIN');
    await owner.query('SELECT * FROM audit_log_create_partitions(6)');
    const sealing = sealer.sealNow();
    let waited = false;
    for (let i = 0; i < 400 && !waited; i++) {
      const { rows } = await watcher.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%picked AS MATERIALIZED%'`,
      );
      waited = rows[0].n > 0;
      if (!waited) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await owner.query('COMMIT');
    expect(waited).toBe(true);
    await sealing;
    await sealer.sealNow();

    const sealed = await db.query(`SELECT coalesce(sum(row_count), 0)::int AS rows FROM audit_seal`, [], 'audit');
    const report = await verify(db.url('audit'));
    expect({ sealed, anomalies: report.out.filter((line) => line.startsWith('ANOMALY')), code: report.code }).toEqual({
      sealed: [{ rows: 2 }],
      anomalies: [],
      code: 0,
    });
  });
});
