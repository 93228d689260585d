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

/** The tables of the trail besides `audit_log` and its partitions, in the audit table's schema. */
const TRAIL_TABLES = [
  'audit_seal',
  'audit_seal_month',
  'audit_seal_month_erasure',
  'audit_seal_recorded',
  'audit_month_check',
  'audit_month_chunk',
  'audit_erasure_id',
];

/**
 * A role through which the app's role can append seals: itself, or a role it is a member of
 * (whose privileges it inherits, or which it may `SET ROLE` to).
 */
export interface SeparationGap {
  /** The role's name. */
  role: string;
  /** Whether it is the app's role itself. */
  own: boolean;
  /** A superuser: every privilege, every trigger can be turned off. */
  superuser: boolean;
  /** It holds INSERT on the seal table. */
  insert: boolean;
  /**
   * The trail's tables, functions and schema it owns: an owner may grant itself INSERT, turn
   * the tables' triggers off, replace the functions and drop the tables.
   */
  owns: string[];
  /**
   * What on the trail's tables lets its own code run as their owner, each as
   * `TRIGGER on "public"."audit_log"`: TRIGGER (a trigger fires as the role whose statement
   * fires it, the owner inside the trail's SECURITY DEFINER functions, and the owner may grant
   * itself INSERT on the seal table), MAINTAIN (PostgreSQL 17+: VACUUM, ANALYZE, CLUSTER and
   * REINDEX run as the owner), granted to it or, for the app's role, to PUBLIC; and membership
   * of `pg_maintain` (MAINTAIN on every table).
   */
  runsAsOwner: string[];
}

/** What the app's role can do that the sealer's alone should: empty when the separation holds. */
export interface SeparationCheck {
  /** The app's role (the connection's login role, whose credentials the app holds). */
  appRole: string;
  gaps: SeparationGap[];
}

interface GapRow {
  app: string;
  role: string;
  own: boolean;
  superuser: boolean;
  insert: boolean;
  owns: string[];
  runs_as_owner: string[];
}

/**
 * Whether the role of a connection (the app's) can append seals, although the sealer has
 * credentials of its own (docs/INTEGRITY.md, "Roles"): through every role it is a member of (as
 * `pg_has_role(…, 'MEMBER')` counts, inheriting or by `SET ROLE`, itself included), a superuser,
 * INSERT on the seal table, or ownership of the trail's tables (the audit table, its partitions,
 * the seal table and the tables the functions keep), functions (`audit_log_*`, `audit_seal_*`)
 * or schema, or a privilege on those tables that runs its code as their owner (TRIGGER, MAINTAIN:
 * {@link SeparationGap.runsAsOwner}). Every name in the statement is schema-qualified: the app role's `search_path`
 * cannot change its answer.
 *
 * @example
 * const { appRole, gaps } = await sealerSeparation(appQuery, '"public"."audit_log"', '"public"."audit_seal"');
 * if (gaps.length > 0) logger.warn(sealerRoleSharedWarning('"public"."audit_seal"', appRole, gaps));
 */
export async function sealerSeparation(query: Query, logTable: string, sealTable: string): Promise<SeparationCheck> {
  const rows = (await query(
    `WITH log AS (
       SELECT c.oid, c.relnamespace AS ns FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)
     ), objects AS (
       SELECT c.relowner AS owner, c.oid::pg_catalog.regclass::pg_catalog.text AS name,
              CASE WHEN c.relname OPERATOR(pg_catalog.=) 'audit_seal' THEN 0 WHEN c.oid OPERATOR(pg_catalog.=) log.oid THEN 1 ELSE 3 END AS rank
         FROM pg_catalog.pg_class AS c, log
        WHERE c.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT t.relid::pg_catalog.oid FROM pg_catalog.pg_partition_tree(log.oid::pg_catalog.regclass) AS t))
           OR (c.relnamespace OPERATOR(pg_catalog.=) log.ns AND c.relname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.name[]))
       UNION ALL
       SELECT p.proowner, p.oid::pg_catalog.regprocedure::pg_catalog.text, 3 FROM pg_catalog.pg_proc AS p, log
        WHERE p.pronamespace OPERATOR(pg_catalog.=) log.ns
          AND (pg_catalog.starts_with(p.proname::pg_catalog.text, 'audit_log_') OR pg_catalog.starts_with(p.proname::pg_catalog.text, 'audit_seal_'))
       UNION ALL
       SELECT n.nspowner, pg_catalog.concat('schema ', pg_catalog.quote_ident(n.nspname)), 2 FROM pg_catalog.pg_namespace AS n, log
        WHERE n.oid OPERATOR(pg_catalog.=) log.ns
     ), grants AS (
       SELECT a.grantee, pg_catalog.concat(a.privilege_type, ' on ', c.oid::pg_catalog.regclass::pg_catalog.text) AS name,
              CASE WHEN c.relname OPERATOR(pg_catalog.=) 'audit_seal' THEN 0 WHEN c.oid OPERATOR(pg_catalog.=) log.oid THEN 1 ELSE 3 END AS rank
         FROM pg_catalog.pg_class AS c CROSS JOIN log CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS a
        WHERE (c.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT t.relid::pg_catalog.oid FROM pg_catalog.pg_partition_tree(log.oid::pg_catalog.regclass) AS t))
               OR (c.relnamespace OPERATOR(pg_catalog.=) log.ns AND c.relname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.name[])))
          AND a.privilege_type OPERATOR(pg_catalog.=) ANY (ARRAY['TRIGGER', 'MAINTAIN']::pg_catalog.text[])
          AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
     )
     SELECT session_user::pg_catalog.text AS app, r.rolname::pg_catalog.text AS role, r.rolname OPERATOR(pg_catalog.=) session_user AS own,
            r.rolsuper AS superuser, pg_catalog.has_table_privilege(r.oid, $3, 'INSERT') AS insert,
            ARRAY(SELECT o.name FROM objects AS o WHERE o.owner OPERATOR(pg_catalog.=) r.oid ORDER BY o.rank, o.name) AS owns,
            pg_catalog.array_cat(
              ARRAY(SELECT g.name FROM grants AS g
                     WHERE g.grantee OPERATOR(pg_catalog.=) r.oid
                        OR (g.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid AND r.rolname OPERATOR(pg_catalog.=) session_user)
                     ORDER BY g.rank, g.name),
              CASE WHEN r.rolname OPERATOR(pg_catalog.=) 'pg_maintain' THEN ARRAY['MAINTAIN on every table'] ELSE ARRAY[]::pg_catalog.text[] END
            ) AS runs_as_owner
       FROM pg_catalog.pg_roles AS r
      WHERE pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER')
      ORDER BY r.rolname OPERATOR(pg_catalog.=) session_user DESC, r.rolname`,
    [logTable, TRAIL_TABLES, sealTable],
  )) as GapRow[];
  const appRole = rows[0]?.app ?? '';
  const gaps = rows
    .filter((row) => row.superuser || row.insert || row.owns.length > 0 || row.runs_as_owner.length > 0)
    .map(({ role, own, superuser, insert, owns, runs_as_owner }) => ({ role, own, superuser, insert, owns, runsAsOwner: runs_as_owner }));
  // A superuser is a member of every role: that one fact says it all.
  const own = gaps.find((gap) => gap.own);
  return { appRole, gaps: own?.superuser ? [own] : gaps };
}
