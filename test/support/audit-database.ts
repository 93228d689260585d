import { DataSource } from 'typeorm';
import { AUDIT_MIGRATIONS } from '../../src/audit';
import { type TestPostgres } from './postgres';

/** A role with the least privilege the module needs. */
export interface AuditWriterRole {
  user: string;
  password: string;
}

/**
 * Creates database `name` on `server`, runs the audit migrations as the owner (`postgres`), and
 * grants `writer` exactly what the example app needs: CONNECT, USAGE on the schema, INSERT and
 * SELECT on `audit_log` and `audit_seal`, EXECUTE on `audit_log_create_partitions`, SELECT on the migrations table. Returns the writer's URL.
 */
export async function createAuditDatabase(server: TestPostgres, name: string, writer: AuditWriterRole): Promise<string> {
  await server.createDatabase(name);
  const migrator = new DataSource({
    type: 'postgres',
    url: server.url(name),
    migrations: [...AUDIT_MIGRATIONS],
    migrationsTableName: 'audit_migrations',
  });
  await migrator.initialize();
  try {
    await migrator.runMigrations();
  } finally {
    await migrator.destroy();
  }
  for (const sql of [
    `CREATE ROLE ${writer.user} LOGIN PASSWORD '${writer.password.replaceAll("'", "''")}'`,
    `GRANT CONNECT ON DATABASE ${name} TO ${writer.user}`,
    `GRANT USAGE ON SCHEMA public TO ${writer.user}`,
    `GRANT INSERT, SELECT ON audit_log TO ${writer.user}`,
    `GRANT INSERT, SELECT ON audit_seal TO ${writer.user}`,
    `GRANT EXECUTE ON FUNCTION audit_log_create_partitions(integer) TO ${writer.user}`,
    `GRANT SELECT ON audit_migrations TO ${writer.user}`,
  ]) {
    await server.query(sql, [], name);
  }
  return server.url(name, writer.user, writer.password);
}
