import { type MigrationInterface, type QueryRunner } from 'typeorm';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * Retention never makes an audit insert wait (issue 20's "reads never disturb writes", docs/LIFECYCLE.md
 * "Locks"). `audit_log_retire_month` detaches the month's partition, which needs ACCESS EXCLUSIVE on
 * `audit_log`; while a reader holds the table (an export nobody reads, a running `audit-verify`)
 * that request waited up to its `lock_timeout` of 5 s, and PostgreSQL queues every later lock
 * request behind a waiting one: each audit insert waited with it, past `writeTimeoutMs`. The
 * function now waits at most 1 ms for any lock (its `lock_timeout`); a lock not free at once fails
 * the call with SQLSTATE 55P03, and `audit-retention` (and the module's retention) try the month a
 * few times more, then report it failed for this run.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditRetireWithoutWaiting1765900000000 implements MigrationInterface {
  name = 'AuditRetireWithoutWaiting1765900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    await queryRunner.query(`ALTER FUNCTION ${ident(schema)}.audit_log_retire_month(date, integer) SET lock_timeout = '1ms'`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    await queryRunner.query(`ALTER FUNCTION ${ident(schema)}.audit_log_retire_month(date, integer) SET lock_timeout = '5s'`);
  }
}
