import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Indexes for reading the trail. An entity's history, newest first, is read straight off
 * `(entity_type, entity_id, occurred_at, id)`, which replaces `(entity_type, entity_id)` (one index
 * the wider, not one more). Exports and searches by time alone walk `(occurred_at, id)`; its keys
 * grow with time, so each insert lands on the index's rightmost page. On a large, busy table,
 * build them beforehand with `CREATE INDEX CONCURRENTLY` under these names: the migration then
 * only drops the old index (a plain CREATE INDEX holds back inserts while it builds).
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditReadIndexes1764300000001 implements MigrationInterface {
  name = 'AuditReadIndexes1764300000001';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS audit_log_entity_time_idx ON audit_log (entity_type, entity_id, occurred_at, id)`);
    await queryRunner.query(`DROP INDEX IF EXISTS audit_log_entity_idx`);
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS audit_log_time_idx ON audit_log (occurred_at, id)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS audit_log_entity_idx ON audit_log (entity_type, entity_id)`);
    await queryRunner.query(`DROP INDEX IF EXISTS audit_log_entity_time_idx`);
    await queryRunner.query(`DROP INDEX IF EXISTS audit_log_time_idx`);
  }
}
