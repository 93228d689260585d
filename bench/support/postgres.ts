import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DataSource } from 'typeorm';
import { type MigrationInterface } from 'typeorm';
import { AUDIT_MIGRATIONS } from '../../src/audit';
import { TestPostgres } from '../../test/support/postgres';

/** The repository root, from both `bench/support` (ts-node, jest) and `bench/dist/bench/support`. */
export const REPO_ROOT = resolve(__dirname, existsSync(resolve(__dirname, '../../package.json')) ? '../..' : '../../../..');

/**
 * Starts an embedded PostgreSQL with the test suites' harness, with PostgreSQL's default fsync
 * settings: skipping the flushes would flatter the naive pattern.
 *
 * @example
 * const pg = await startPostgres();
 * try { … } finally { await pg.stop(); }
 */
export function startPostgres(): Promise<TestPostgres> {
  return TestPostgres.start({ durable: true });
}

/**
 * Creates database `name` with an empty `audit_log` (every audit migration, as users run them, or
 * the ones given) and returns its URL. Each measured run gets a fresh one: the table's triggers
 * refuse TRUNCATE.
 *
 * @example
 * const url = await freshAuditDatabase(pg, 'tp_raw');
 */
export async function freshAuditDatabase(
  pg: TestPostgres,
  name: string,
  migrations: readonly (new () => MigrationInterface)[] = AUDIT_MIGRATIONS,
): Promise<string> {
  await pg.createDatabase(name);
  const url = pg.url(name);
  const dataSource = new DataSource({ type: 'postgres', url, migrations: [...migrations], logging: false });
  await dataSource.initialize();
  try {
    await dataSource.runMigrations();
  } finally {
    await dataSource.destroy();
  }
  return url;
}

/** Rows in `audit_log` of database `name`. */
export async function countRows(pg: TestPostgres, name: string): Promise<number> {
  const [row] = await pg.query<{ n: string }>('SELECT count(*) AS n FROM audit_log', [], name);
  return Number(row.n);
}

/**
 * Turns autovacuum off for every partition of `audit_log` in database `name` (the default one
 * too): a partitioned table takes no storage parameters of its own, and no vacuum of millions of
 * filled rows may land in a measurement.
 *
 * @example
 * await autovacuumOff(pg, 'history');
 */
export async function autovacuumOff(pg: TestPostgres, name: string): Promise<void> {
  await pg.query(
    `DO $$ DECLARE p regclass; BEGIN
       FOR p IN SELECT relid FROM pg_partition_tree('audit_log') WHERE isleaf LOOP
         EXECUTE format('ALTER TABLE %s SET (autovacuum_enabled = false)', p);
       END LOOP; END $$`,
    [],
    name,
  );
}

export { TestPostgres };
