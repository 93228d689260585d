import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS } from '../src/audit';
import { sealOnce } from '../src/audit/integrity/seal-store';
import { verify } from './support/integrity';
import { insertRowsAgo, migrateWithPastBound, monthsAgo, partitionAgo } from './support/past-months';
import { TestPostgres } from './support/postgres';

// A trail whose legacy bound was prepared months before the partition migration ran (the
// documented path for a large table), or whose app did not run for longer than its months ahead:
// months in the past without a partition. Their rows wait in the default partition; the
// maintenance must give each such month its partition and move its rows there, tx and all, so
// that retention can one day remove it, as it does for this month's rows dated ahead.

describe("past months' partitions", () => {
  let db: TestPostgres;

  beforeAll(async () => {
    db = await TestPostgres.start();
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
  });

  const migrate = async (database: string, migrations: readonly unknown[]) => {
    const source = new DataSource({ type: 'postgres', url: db.url(database), migrations: [...(migrations as never[])] });
    await source.initialize();
    try {
      await source.runMigrations();
    } finally {
      await source.destroy();
    }
  };
  const partOf = (database: string) =>
    db.query<{ part: string; n: number }>(
      `SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM audit_log GROUP BY 1 ORDER BY 1`,
      [],
      database,
    );
  const sealAll = async (database: string) => {
    const source = new DataSource({ type: 'postgres', url: db.url(database) });
    await source.initialize();
    const runner = source.createQueryRunner();
    try {
      while ((await sealOnce(runner, 'audit_log', { maxRows: 1000, signingKey: null })) !== null);
    } finally {
      await runner.release();
      await source.destroy();
    }
  };

  it('creates the partition of each past month that has rows in the default partition, and moves them, tx and all', async () => {
    await db.createDatabase('gap');
    await migrateWithPastBound(db, 'gap', 4);
    await db.query('SELECT * FROM audit_log_create_partitions(3)', [], 'gap'); // this month and ahead, as at the module's start
    await insertRowsAgo(db, 'gap', 2, 5);
    await insertRowsAgo(db, 'gap', 1, 2);
    expect(await partOf('gap')).toEqual([{ part: 'audit_log_default', n: 7 }]);
    const txBefore = await db.query(`SELECT id, tx::text AS tx FROM audit_log ORDER BY id`, [], 'gap');
    await sealAll('gap');

    const [status] = await db.query(
      'SELECT created, moved::int AS moved, default_rows::int AS default_rows FROM audit_log_create_partitions(3)',
      [],
      'gap',
    );

    expect(status).toEqual({ created: 2, moved: 7, default_rows: 0 });
    expect(await partOf('gap')).toEqual([
      { part: partitionAgo(2), n: 5 },
      { part: partitionAgo(1), n: 2 },
    ]);
    expect(await db.query(`SELECT id, tx::text AS tx FROM audit_log ORDER BY id`, [], 'gap')).toEqual(txBefore);
    const [{ bound }] = await db.query(
      `SELECT pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_class c WHERE c.relname = $1`,
      [partitionAgo(2)],
      'gap',
    );
    expect(bound).toBe(
      `FOR VALUES FROM ('${monthsAgo(2).start.replace('T', ' ').replace('.000Z', '+00')}') TO ('${monthsAgo(1).start.replace('T', ' ').replace('.000Z', '+00')}')`,
    );
    // The month between, which has no row, gets no partition; a later row of it waits in the default partition.
    const [{ n: empty }] = await db.query(`SELECT count(*)::int AS n FROM pg_class WHERE relname = $1`, [partitionAgo(3)], 'gap');
    expect(empty).toBe(0);
    // The new partitions are append-only, like those made ahead.
    await expect(db.query(`TRUNCATE ${partitionAgo(2)}`, [], 'gap')).rejects.toThrow(/append-only|not allowed|refuse/i);
    await expect(db.query(`DELETE FROM ${partitionAgo(1)}`, [], 'gap')).rejects.toThrow(/append-only|not allowed|refuse/i);
    const report = await verify(db.url('gap'));
    expect([report.anomalies, report.code]).toEqual([[], 0]);
  });

  it('keeps the grant an application role held on the function through the migration, and works for that role', async () => {
    const upToHere = AUDIT_MIGRATIONS.slice(0, AUDIT_MIGRATIONS.findIndex((m) => m.name === 'AuditSealLinks1765400000000') + 1);
    await db.createDatabase('granted');
    await migrateWithPastBound(db, 'granted', 3, upToHere);
    await db.query(`CREATE ROLE past_writer LOGIN PASSWORD 'pw'`, [], 'granted');
    await db.query(`GRANT INSERT, SELECT ON audit_log TO past_writer`, [], 'granted');
    await db.query(`GRANT EXECUTE ON FUNCTION audit_log_create_partitions(integer) TO past_writer`, [], 'granted');
    await migrate('granted', AUDIT_MIGRATIONS);
    await db.query('SELECT * FROM audit_log_create_partitions(3)', [], 'granted');
    const client = new Client({ connectionString: db.url('granted', 'past_writer', 'pw') });
    await client.connect();
    try {
      await client.query(
        `INSERT INTO audit_log (id, occurred_at, action, outcome) VALUES (gen_random_uuid(), $1, 'nda_created', 'success')`,
        [monthsAgo(2).start],
      );
      const { rows } = await client.query(`SELECT created, moved::int AS moved FROM audit_log_create_partitions(3)`);
      expect(rows).toEqual([{ created: 1, moved: 1 }]);
      await expect(client.query('SELECT count(*) FROM audit_log_default')).rejects.toThrow(/permission denied/);
    } finally {
      await client.end();
    }
    const [{ part }] = await db.query(`SELECT tableoid::regclass::text AS part FROM audit_log`, [], 'granted');
    expect(part).toBe(partitionAgo(2));
  });

  it('is undone by its down(): the previous function back under its name, the grant with it', async () => {
    const source = new DataSource({ type: 'postgres', url: db.url('granted'), migrations: [...(AUDIT_MIGRATIONS as unknown as never[])] });
    await source.initialize();
    try {
      // The migrations after it first, then it.
      const undone = async () => !(await source.query(`SELECT 1 FROM migrations WHERE name = 'AuditPartitionUpkeep1765800000000'`)).length;
      while (!(await undone())) await source.undoLastMigration();
    } finally {
      await source.destroy();
    }
    const functions = await db.query(
      `SELECT proname FROM pg_proc WHERE proname LIKE 'audit_log_create_partitions%' ORDER BY proname`,
      [],
      'granted',
    );
    expect(functions).toEqual([{ proname: 'audit_log_create_partitions' }]);
    const client = new Client({ connectionString: db.url('granted', 'past_writer', 'pw') });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT created FROM audit_log_create_partitions(3)`);
      expect(rows).toEqual([{ created: 0 }]);
    } finally {
      await client.end();
    }
  });

  it('runs again on a database that has it (the migrations recorded in another table), and the function still works', async () => {
    await db.createDatabase('twice');
    await migrateWithPastBound(db, 'twice', 3);
    const again = new DataSource({
      type: 'postgres',
      url: db.url('twice'),
      migrations: [...(AUDIT_MIGRATIONS as unknown as never[])],
      migrationsTableName: 'other_migrations',
    });
    await again.initialize();
    try {
      await again.runMigrations();
    } finally {
      await again.destroy();
    }
    await insertRowsAgo(db, 'twice', 2, 2);
    const [status] = await db.query('SELECT created, moved::int AS moved FROM audit_log_create_partitions(0)', [], 'twice');
    expect(status).toEqual({ created: 2, moved: 2 });
  });
});
