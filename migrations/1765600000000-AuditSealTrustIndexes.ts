import { type MigrationInterface, type QueryRunner } from 'typeorm';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * Two partial indexes that keep the seal-trust reads small however long the chain grows (issue 20,
 * docs/INTEGRITY.md). Before each seal the sealer reads the newest signed seal and the first seal
 * that records an entry-authentication boundary, and the `audit_seal_check_link` trigger reads the
 * same on each insert. Ordered by `seq` alone, both walked every seal of a chain with no signature
 * or no boundary (a trail sealed every 5 s has 6M seals a year); each is now one lookup in an
 * index that holds only the seals it looks for:
 *
 * - `audit_seal_signed_seq_idx`: `seq` of the signed seals;
 * - `audit_seal_entry_auth_seq_idx`: `seq` of the seals that record a boundary.
 *
 * Building them reads `audit_seal` once (its small rows: the manifests are stored apart) and holds
 * off new seals meanwhile. On a chain signed from its start, with a boundary from its start, each
 * is about the size of the primary key's index (one `seq` a seal); on one without, each is empty.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditSealTrustIndexes1765600000000 implements MigrationInterface {
  name = 'AuditSealTrustIndexes1765600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS audit_seal_signed_seq_idx ON ${s}.audit_seal (seq) WHERE signature IS NOT NULL`);
    await queryRunner.query(
      `CREATE INDEX IF NOT EXISTS audit_seal_entry_auth_seq_idx ON ${s}.audit_seal (seq) WHERE entry_auth_from IS NOT NULL`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX IF EXISTS audit_seal_entry_auth_seq_idx`);
    await queryRunner.query(`DROP INDEX IF EXISTS audit_seal_signed_seq_idx`);
  }
}
