import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Entries authenticated at birth (issue 20, `integrity.entryKeys`):
 *
 * - `audit_log.auth_code`: the entry's authentication code (`v1:<key id>:<mac>`), made by the
 *   module with a key the database never sees. NULL for rows written without entry keys.
 * - `audit_seal.entry_auth_from`: the transaction id from which every row must carry a valid
 *   code, recorded by the first seal made with entry keys and repeated by every later seal (its
 *   hash covers it). Rows below it without a code were written before entry authentication.
 *
 * Both columns are nullable without a default: adding them rewrites nothing.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditEntryAuth1764900000000 implements MigrationInterface {
  name = 'AuditEntryAuth1764900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS auth_code text`);
    await queryRunner.query(`ALTER TABLE audit_seal ADD COLUMN IF NOT EXISTS entry_auth_from bigint`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE audit_seal DROP COLUMN IF EXISTS entry_auth_from`);
    await queryRunner.query(`ALTER TABLE audit_log DROP COLUMN IF EXISTS auth_code`);
  }
}
