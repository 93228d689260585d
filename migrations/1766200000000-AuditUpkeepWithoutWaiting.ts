import { type MigrationInterface, type QueryRunner } from 'typeorm';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** The upkeep function, and the one it calls for this month and the months ahead. */
const FUNCTIONS = ['audit_log_create_partitions(integer)', 'audit_log_create_partitions_ahead(integer)'];

/**
 * The partition upkeep never makes an audit insert wait (issue 21, docs/LIFECYCLE.md "Partitions
 * created ahead"). `audit_log_create_partitions` attaches each month it creates, which needs
 * ACCESS EXCLUSIVE on the default partition; while a reader held it (an export nobody reads, a
 * running `audit-verify`) the call waited up to its `lock_timeout` of 5 s, holding SHARE ROW
 * EXCLUSIVE on the default partition, and PostgreSQL queues every later lock request behind a
 * waiting one: each insert of a row without a month partition waited with it. Both functions
 * (the wrapper and the one it calls for this month and the months ahead) now wait at most 1 ms
 * for any lock, the advisory lock of another caller included; a lock not free at once fails the
 * call with SQLSTATE 55P03 and rolls back all it did, and the module tries again a few times,
 * then reports the months it could not create (health `lastError`).
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditUpkeepWithoutWaiting1766200000000 implements MigrationInterface {
  name = 'AuditUpkeepWithoutWaiting1766200000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await setLockTimeout(queryRunner, '1ms');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await setLockTimeout(queryRunner, '5s');
  }
}

async function setLockTimeout(queryRunner: QueryRunner, timeout: string): Promise<void> {
  const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
  for (const fn of FUNCTIONS) await queryRunner.query(`ALTER FUNCTION ${ident(schema)}.${fn} SET lock_timeout = '${timeout}'`);
}
