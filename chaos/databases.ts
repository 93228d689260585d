import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createAuditDatabase } from '../test/support/audit-database';
import { TestPostgres } from '../test/support/postgres';

/** The repository root, from `chaos/` (ts-jest) and from `chaos/dist/chaos/` (compiled). */
export const REPO_ROOT = resolve(__dirname, existsSync(resolve(__dirname, '../package.json')) ? '..' : '../../..');

/** The database holding `audit_log` on the audit server. */
export const AUDIT_DATABASE = 'audit';

/** The app's role on the audit database: CONNECT, USAGE, SELECT and INSERT, nothing more. */
export const AUDIT_WRITER = { user: 'chaos_writer', password: 'chaos-writer-pw' };

/** Starts an embedded PostgreSQL with the test suites' harness. */
export function startPostgres(): Promise<TestPostgres> {
  return TestPostgres.start();
}

/**
 * Creates the audit database, runs the module's migration as `postgres` (the table's owner), and
 * creates {@link AUDIT_WRITER}, so that `REVOKE INSERT` really takes the app's right away.
 * Returns the URL the app must use.
 *
 * @example
 * const url = await prepareAuditDatabase(auditDb); // postgres://chaos_writer:…@127.0.0.1:…/audit
 */
export function prepareAuditDatabase(auditDb: TestPostgres): Promise<string> {
  return createAuditDatabase(auditDb, AUDIT_DATABASE, AUDIT_WRITER);
}

/** Rows of `audit_log` per (action, entity id), for the entries that carry an entity id. */
export interface AuditRowCount {
  action: string;
  entityId: string;
  rows: number;
}

/**
 * Counts the rows of `audit_log` grouped by action and entity id.
 *
 * @example
 * const counts = await countAuditRows(auditDb); // [{ action: 'nda_created', entityId: '…', rows: 1 }, …]
 */
export async function countAuditRows(auditDb: TestPostgres): Promise<AuditRowCount[]> {
  const rows = await auditDb.query<{ action: string; entity_id: string; n: string }>(
    'SELECT action, entity_id, count(*) AS n FROM audit_log WHERE entity_id IS NOT NULL GROUP BY action, entity_id',
    [],
    AUDIT_DATABASE,
  );
  return rows.map((r) => ({ action: r.action, entityId: r.entity_id, rows: Number(r.n) }));
}

export { TestPostgres };
