import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS } from '../../src/audit';
import { type TestPostgres } from './postgres';

/** The month `k` months before the current one (UTC): `YYYY-MM`, its first instant and the next month's, ISO 8601. */
export function monthsAgo(k: number): { month: string; start: string; end: string } {
  const now = new Date();
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - k, 1));
  const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - k + 1, 1));
  return { month: start.toISOString().slice(0, 7), start: start.toISOString(), end: end.toISOString() };
}

/** The name of the monthly partition `k` months back. */
export function partitionAgo(k: number): string {
  return `audit_log_p${monthsAgo(k).month.replace('-', '_')}`;
}

/**
 * Runs `migrations` (every audit migration by default) on a new database, with the legacy bound
 * prepared at the first of the month `months` back (the migration's documented path for a bound
 * made beforehand): the migrations before the partitions, the bound, then the rest.
 */
export async function migrateWithPastBound(
  db: TestPostgres,
  database: string,
  months: number,
  migrations: readonly unknown[] = AUDIT_MIGRATIONS,
): Promise<void> {
  const cut = AUDIT_MIGRATIONS.findIndex((m) => m.name === 'AuditPartitions1765000000000');
  for (const step of [AUDIT_MIGRATIONS.slice(0, cut), migrations]) {
    const source = new DataSource({ type: 'postgres', url: db.url(database), migrations: [...(step as never[])] });
    await source.initialize();
    try {
      if (step === migrations) {
        await source.query(
          `ALTER TABLE audit_log ADD CONSTRAINT audit_log_legacy_bound CHECK (occurred_at < '${monthsAgo(months).start}'::timestamptz) NOT VALID`,
        );
        await source.query(`ALTER TABLE audit_log VALIDATE CONSTRAINT audit_log_legacy_bound`);
      }
      await source.runMigrations();
    } finally {
      await source.destroy();
    }
  }
}

/**
 * A trail whose monthly partitions begin `months` months back: {@link migrateWithPastBound}, then
 * the past months' partitions made by hand, as `audit_log_create_partitions()` makes this
 * month's (it makes a past month's only for rows waiting in the default partition).
 */
export async function trailWithPastMonths(db: TestPostgres, database: string, months: number): Promise<void> {
  await migrateWithPastBound(db, database, months);
  for (let k = months; k >= 1; k--) {
    const { start, end } = monthsAgo(k);
    await db.query(`CREATE TABLE ${partitionAgo(k)} PARTITION OF audit_log FOR VALUES FROM ('${start}') TO ('${end}')`, [], database);
    await db.query(
      `CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON ${partitionAgo(k)} FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()`,
      [],
      database,
    );
  }
}

/** Inserts `count` rows dated in the month `k` months back (hours 1…count of its first day). */
export function insertRowsAgo(db: TestPostgres, database: string, k: number, count = 3): Promise<unknown> {
  return db.query(
    `INSERT INTO audit_log (id, occurred_at, action, outcome)
     SELECT gen_random_uuid(), $1::timestamptz + make_interval(hours => i), 'nda_created', 'success' FROM generate_series(1, $2::int) AS i`,
    [monthsAgo(k).start, count],
    database,
  );
}
