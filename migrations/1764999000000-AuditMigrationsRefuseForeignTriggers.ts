import { type MigrationInterface, type QueryRunner } from 'typeorm';

/** A single-quoted SQL literal. */
const lit = (text: string) => `'${text.replaceAll("'", "''")}'`;

/**
 * The migrations refuse to go on while a trigger the trail's owner did not provide is on the
 * trail's tables. Migrations run as the owner (or a superuser), and a trigger fires as the role
 * that runs the statement: some migrations write to the trail's tables
 * (`AuditPartitions1765000000000` copies and deletes rows), so a trigger another role put there
 * (a role granted TRIGGER, which `GRANT ALL` gives) would run that role's code with the owner's
 * rights, and could grant itself INSERT on `audit_seal` (docs/INTEGRITY.md, "Roles"), before the
 * module's start-up check has a chance to say so.
 *
 * Its timestamp places it before the first migration that writes rows, so a trail upgraded from
 * any earlier release runs it first; a trail past that point runs it once, as any migration it has
 * not run. Each later migration that writes to the trail's tables calls {@link refuseForeignTriggers}
 * itself. It changes nothing; `down` has nothing to undo.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditMigrationsRefuseForeignTriggers1764999000000 implements MigrationInterface {
  name = 'AuditMigrationsRefuseForeignTriggers1764999000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await refuseForeignTriggers(queryRunner, this.name);
  }

  async down(): Promise<void> {
    // Nothing was changed.
  }
}

/**
 * Throws, naming each one, while a trigger is on a table of the trail (a table of the current
 * schema named `audit_…`, a partition of `audit_log` included) that runs a function, or an
 * operator, the table's owner does not own: as the trigger's function or in its `WHEN`
 * condition (the server's own, in `pg_catalog`, excepted). Inside a transaction
 * it first locks those tables in ROW EXCLUSIVE mode (inserts go on; no trigger can be made on them
 * until the migrations' commit).
 *
 * @example
 * await refuseForeignTriggers(queryRunner, this.name); // first in the up() of a migration that writes rows
 */
export async function refuseForeignTriggers(queryRunner: QueryRunner, migration: string): Promise<void> {
  const trail = `c.relnamespace = pg_catalog.current_schema()::pg_catalog.regnamespace
    AND c.relkind IN ('r', 'p') AND c.relname LIKE ${lit('audit\\_%')}`;
  if (queryRunner.isTransactionActive) {
    const tables = (await queryRunner.query(
      `SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name
         FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        WHERE ${trail} ORDER BY c.relname`,
    )) as { name: string }[];
    if (tables.length > 0) await queryRunner.query(`LOCK TABLE ${tables.map((t) => t.name).join(', ')} IN ROW EXCLUSIVE MODE`);
  }
  // What a trigger runs is recorded as its dependencies: its function, and each function and
  // operator of its WHEN condition (pg_catalog's are the server's own).
  const found = (await queryRunner.query(
    `SELECT pg_catalog.format('%I on %I', t.tgname, c.relname) AS trigger
       FROM pg_catalog.pg_trigger AS t JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
      WHERE ${trail} AND NOT t.tgisinternal AND EXISTS (
        SELECT FROM pg_catalog.pg_depend AS d
          LEFT JOIN pg_catalog.pg_proc AS p ON d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = d.refobjid
          LEFT JOIN pg_catalog.pg_operator AS o ON d.refclassid = 'pg_catalog.pg_operator'::pg_catalog.regclass AND o.oid = d.refobjid
         WHERE d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND d.objid = t.oid
           AND ((p.pronamespace <> 'pg_catalog'::pg_catalog.regnamespace AND p.proowner <> c.relowner)
             OR (o.oprnamespace <> 'pg_catalog'::pg_catalog.regnamespace AND o.oprowner <> c.relowner)))
      ORDER BY c.relname, t.tgname`,
  )) as { trigger: string }[];
  if (found.length === 0) return;
  throw new Error(
    `${migration}: the migrations refuse to run while a trigger the trail's owner did not provide is on its tables: ` +
      `${found.map((f) => f.trigger).join(', ')}. A migration runs as the owner, and such a trigger would run its code ` +
      `with the owner's rights. As the owner, drop each one and revoke TRIGGER on the trail's tables from every role ` +
      `but their owner (docs/INTEGRITY.md, "Roles"; docs/RUNBOOK.md, 16), then run the migrations again.`,
  );
}
