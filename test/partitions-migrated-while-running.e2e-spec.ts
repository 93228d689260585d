import { type INestApplication } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS, AuditPartitions, AuditService } from '../src/audit';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';
import { monthPartition, monthStart, startPartitionsApp } from './support/partitions';

// An application started before the partitioning migration finds no partition function (42883):
// health says `partitioned: false`. Once a deploy has run the migration, the next check must find
// the function and keep the partitions ahead, as for an application started after it.
const BEFORE_PARTITIONS = AUDIT_MIGRATIONS.slice(
  0,
  AUDIT_MIGRATIONS.findIndex((migration) => migration.name === 'AuditPartitions1765000000000'),
);

describe('an application running while audit_log is partitioned', () => {
  let db: TestPostgres;
  let app: INestApplication;
  let stderr: StderrCapture;

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    await db.createDatabase('audit');
    app = await startPartitionsApp(db.url('audit'), { partitions: { intervalMs: 1000 } }, BEFORE_PARTITIONS);
    // Start-up waits for the first check at most writeTimeoutMs: on a loaded machine it is not over yet.
    await app.get(AuditPartitions).maintainNow();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('keeps the partitions ahead once the migration has run', async () => {
    await app.get(AuditService).log({ action: 'nda_created', entityId: 'before' });
    expect(app.get(AuditPartitions).status()).toMatchObject({ partitioned: false });

    // The deploy runs the partitioning migration while the application goes on writing.
    const migrator = new DataSource({
      type: 'postgres',
      url: db.url('audit'),
      migrations: [...AUDIT_MIGRATIONS],
      migrationsTableName: 'audit_migrations',
    });
    await migrator.initialize();
    try {
      await migrator.runMigrations();
    } finally {
      await migrator.destroy();
    }
    await app.get(AuditService).log({ action: 'nda_created', entityId: 'after' });

    // The next checks (hourly by default; 1 s here, and one asked for now).
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await app.get(AuditPartitions).maintainNow();

    const partitions = await db.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = 'audit_log'::regclass ORDER BY 1`,
      [],
      'audit',
    );
    expect({ status: app.get(AuditPartitions).status(), partitions: partitions.map((p) => p.name) }).toMatchObject({
      status: { partitioned: true, coveredUntil: monthStart(4).toISOString(), lastError: null },
      partitions: ['audit_log_default', 'audit_log_legacy', ...[1, 2, 3].map((m) => monthPartition(monthStart(m)))],
    });
  });
});
