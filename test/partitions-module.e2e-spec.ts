import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AuditPartitions, AuditSealer, AuditService, DbHealthIndicator } from '../src/audit';
import { createAuditDatabase } from './support/audit-database';
import { verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';
import { monthPartition, monthStart, startPartitionsApp } from './support/partitions';

// The module keeps the monthly partitions ahead by itself, as a role that may only INSERT and
// SELECT audit_log (and EXECUTE the migration's function): an entry dated past them is written
// all the same (default partition), shown in health, and moved, still sealed, when its month's
// partition is created.
const WRITER = { user: `part_${randomBytes(3).toString('hex')}`, password: 'pw-partitions' };

describe('partitions kept ahead by the module', () => {
  let db: TestPostgres;
  let app: INestApplication;
  let writerUrl: string;
  let stderr: StderrCapture;

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    writerUrl = await createAuditDatabase(db, 'audit', WRITER);
    app = await startPartitionsApp(writerUrl, { integrity: { enabled: true, intervalMs: 3_600_000 } });
    await app.get(AuditPartitions).maintainNow();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  const partitionOf = async (id: string) => {
    const [row] = await db.query(`SELECT tableoid::regclass::text AS part FROM audit_log WHERE id = $1`, [id], 'audit');
    return row?.part as string | undefined;
  };
  const details = () => app.get(DbHealthIndicator).isHealthy().audit_db as { partitions?: Record<string, unknown> };

  it('creates the next three months at start, as the least-privilege role, and shows them in health', async () => {
    const partitions = await db.query(
      `SELECT c.relname AS name FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = 'audit_log'::regclass ORDER BY 1`,
      [],
      'audit',
    );
    expect(partitions.map((p) => p.name)).toEqual([
      'audit_log_default',
      'audit_log_legacy',
      ...[1, 2, 3].map((m) => monthPartition(monthStart(m))),
    ]);
    expect(details().partitions).toMatchObject({
      partitioned: true,
      coveredUntil: monthStart(4).toISOString(),
      defaultRows: 0,
      created: 3,
      lastError: null,
    });
  });

  it('has made its first check by the time the application has started, so a seal right after start covers what was logged', async () => {
    await db.createDatabase('fresh');
    // Start-up waits for the first check at most writeTimeoutMs: long enough here that a loaded
    // machine, where the check can take seconds, never reaches that bound.
    const fresh = await startPartitionsApp(db.url('fresh'), {
      writeTimeoutMs: 30_000,
      integrity: { enabled: true, intervalMs: 3_600_000 },
    });
    try {
      expect(fresh.get(AuditPartitions).status()).toMatchObject({ partitioned: true, created: 3, lastRunAt: expect.any(String) });
      await fresh.get(AuditService).log({ action: 'nda_created', entityId: 'first' });
      await fresh.get(AuditSealer).sealNow();
      const sealed = await db.query(`SELECT coalesce(sum(row_count), 0)::int AS rows FROM audit_seal`, [], 'fresh');
      expect(sealed).toEqual([{ rows: 1 }]);
    } finally {
      await fresh.close();
    }
  });

  it('writes an entry dated past the partitions to the default one, counts it in health, and moves it when its month comes within reach', async () => {
    const far = new Date(monthStart(6).getTime() + 86_400_000);
    await app.get(AuditService).log({ action: 'nda_created', entityId: 'far', occurredAt: far });
    const [{ id: stored }] = await db.query(`SELECT id::text AS id FROM audit_log WHERE entity_id = 'far'`, [], 'audit');
    expect(await partitionOf(stored as string)).toBe('audit_log_default');
    await app.get(AuditSealer).sealNow();
    await app.get(AuditPartitions).maintainNow();
    expect(details().partitions).toMatchObject({ defaultRows: 1, created: 3, moved: 0 });

    // The same module, keeping six months ahead: the entry's month now gets its partition.
    const wider = await startPartitionsApp(writerUrl, { partitions: { monthsAhead: 6 } });
    try {
      await wider.get(AuditPartitions).maintainNow();
      expect(wider.get(AuditPartitions).status()).toMatchObject({ created: 3, moved: 1, defaultRows: 0, lastError: null });
    } finally {
      await wider.close();
    }
    expect(await partitionOf(stored as string)).toBe(monthPartition(far));
    const report = await verify(db.url('audit'));
    expect(report.anomalies).toEqual([]);
    expect(report.code).toBe(0);
  });

  it('reports a role that may not create partitions in health, and still writes', async () => {
    await db.query(`REVOKE EXECUTE ON FUNCTION audit_log_create_partitions(integer) FROM ${WRITER.user}`, [], 'audit');
    try {
      await app.get(AuditPartitions).maintainNow();
      expect(details().partitions).toMatchObject({
        lastError: expect.stringMatching(
          /^42501: permission denied for function audit_log_create_partitions \(GRANT EXECUTE ON FUNCTION audit_log_create_partitions\(integer\) to the application role\)$/,
        ),
      });
      await app.get(AuditService).log({ action: 'nda_created', entityId: 'still' });
      const client = new Client({ connectionString: db.url('audit') });
      await client.connect();
      const { rows } = await client.query(`SELECT count(*)::int AS n FROM audit_log WHERE entity_id = 'still'`);
      await client.end();
      expect(rows).toEqual([{ n: 1 }]);
    } finally {
      await db.query(`GRANT EXECUTE ON FUNCTION audit_log_create_partitions(integer) TO ${WRITER.user}`, [], 'audit');
    }
  });
});
