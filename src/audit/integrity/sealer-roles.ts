/** Rows of one statement. */
type Query = (sql: string, parameters: unknown[]) => Promise<unknown>;

/**
 * The privileges sealing needs that the connection's role lacks (`SELECT` on the audit table,
 * `SELECT` and `INSERT` on the seal table), each as `INSERT on "public"."audit_seal"`; empty when
 * it holds them all (a superuser always does).
 *
 * @example
 * const missing = await missingSealerPrivileges(query, '"public"."audit_log"', '"public"."audit_seal"');
 * if (missing.length > 0) throw AuditSealerPrivilegeError.missing(missing);
 */
export async function missingSealerPrivileges(query: Query, logTable: string, sealTable: string): Promise<string[]> {
  const [held] = (await query(
    `SELECT pg_catalog.has_table_privilege($1, 'SELECT') AS log_select, pg_catalog.has_table_privilege($2, 'SELECT') AS seal_select,
            pg_catalog.has_table_privilege($2, 'INSERT') AS seal_insert`,
    [logTable, sealTable],
  )) as { log_select: boolean; seal_select: boolean; seal_insert: boolean }[];
  const missing: string[] = [];
  if (!held.log_select) missing.push(`SELECT on ${logTable}`);
  if (!held.seal_insert) missing.push(`INSERT on ${sealTable}`);
  if (!held.seal_select) missing.push(`SELECT on ${sealTable}`);
  return missing;
}

/**
 * Whether the role of a connection (the app's) may insert into the seal table: with the sealer on
 * credentials of its own, it must not (docs/INTEGRITY.md, "Roles").
 *
 * @example
 * if (await canInsertSeals(appQuery, '"public"."audit_seal"')) logger.warn(sealerRoleSharedWarning('"public"."audit_seal"'));
 */
export async function canInsertSeals(query: Query, sealTable: string): Promise<boolean> {
  const [{ insert }] = (await query(`SELECT pg_catalog.has_table_privilege($1, 'INSERT') AS insert`, [sealTable])) as { insert: boolean }[];
  return insert;
}
