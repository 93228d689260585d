import { type MigrationInterface, type QueryRunner } from 'typeorm';

/** The name of the constraint that bounds the legacy partition; made beforehand on a large table (docs/LIFECYCLE.md). */
const LEGACY_BOUND = 'audit_log_legacy_bound';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * Range-partitions `audit_log` by `occurred_at`, one partition a month (issue 21), without
 * rewriting the table. In the migration's one transaction:
 *
 * 1. `audit_log` and its indexes are renamed to `audit_log_legacy…` (ACCESS EXCLUSIVE, held to
 *    the commit: inserts wait, the module buffers meanwhile).
 * 2. Rows dated from the first of next month (UTC) on, and rows of no month (`infinity`), are
 *    copied to a new table that becomes the default partition, and removed from the legacy table:
 *    none on a sound table.
 * 3. The legacy table gets `CHECK (occurred_at < <first of next month>)`, validated by one scan;
 *    a constraint `audit_log_legacy_bound` made and validated beforehand (which lets inserts
 *    through) is used instead. Its primary key becomes `(id, occurred_at)`: the unique index is
 *    built here, or beforehand `CONCURRENTLY` as `audit_log_id_occurred_at_key`.
 * 4. The partitioned `audit_log` is created with the same columns, defaults, CHECK constraints (as
 *    valid as the legacy table's), indexes, grants and triggers; the legacy table is attached as
 *    the partition `FROM (MINVALUE) TO (<first of next month>)` (the CHECK spares the scan), and
 *    the default partition beside it. PostgreSQL clones the row triggers (append-only, `tx`) to
 *    every partition; the TRUNCATE trigger is put on each partition as well.
 * 5. `audit_log_create_partitions(months_ahead)`: a SECURITY DEFINER function, owned by the
 *    migration's role, that creates the partitions of this month and the next `months_ahead`
 *    (0 to 24) that do not exist yet, moving the default partition's rows of each such month
 *    into it first, and answers what it did and how many rows the default partition holds.
 *    EXECUTE is revoked from PUBLIC: grant it to the application's role.
 *
 * A table already partitioned is left as it is (only the function is replaced).
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditPartitions1765000000000 implements MigrationInterface {
  name = 'AuditPartitions1765000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const q = async <T = Record<string, unknown>>(sql: string, parameters?: unknown[]) => (await queryRunner.query(sql, parameters)) as T[];
    const [{ schema }] = await q<{ schema: string }>(`SELECT current_schema() AS schema`);
    const s = ident(schema);
    const [{ kind }] = await q<{ kind: string }>(`SELECT relkind::text AS kind FROM pg_catalog.pg_class WHERE oid = $1::regclass`, [
      `${s}.audit_log`,
    ]);
    if (kind !== 'p') await this.convert(q, schema);
    await createPartitionFunction(q, schema);
  }

  private async convert(
    q: <T = Record<string, unknown>>(sql: string, parameters?: unknown[]) => Promise<T[]>,
    schema: string,
  ): Promise<void> {
    const s = ident(schema);
    await q(`LOCK TABLE ${s}.audit_log IN ACCESS EXCLUSIVE MODE`);
    const [prepared] = await q<{ bound: string }>(
      `SELECT substring(pg_catalog.pg_get_constraintdef(oid) FROM '''([^'']+)''') AS bound FROM pg_catalog.pg_constraint
       WHERE conrelid = $1::regclass AND conname = $2 AND convalidated`,
      [`${s}.audit_log`, LEGACY_BOUND],
    );
    const [{ epoch }] = prepared
      ? await q<{ epoch: number }>(`SELECT extract(epoch FROM $1::timestamptz)::float8 AS epoch`, [prepared.bound])
      : await q<{ epoch: number }>(
          `SELECT extract(epoch FROM (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC')::float8 AS epoch`,
        );
    const boundDate = new Date(epoch * 1000);
    // Monthly partitions follow the legacy one: it must end where a month (UTC) begins.
    if (boundDate.getTime() !== Date.UTC(boundDate.getUTCFullYear(), boundDate.getUTCMonth(), 1)) {
      throw new Error(`${LEGACY_BOUND} must bound occurred_at by the first instant of a month (UTC), not ${boundDate.toISOString()}`);
    }
    const boundSql = `'${boundDate.toISOString()}'::timestamptz`;
    // Rename the table and every index on it: the partitioned table takes the names.
    await q(`ALTER TABLE ${s}.audit_log RENAME TO audit_log_legacy`);
    const indexes = await q<{ name: string }>(
      `SELECT c.relname AS name FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass`,
      [`${s}.audit_log_legacy`],
    );
    for (const { name } of indexes) {
      const legacyName = `audit_log_legacy_${name.startsWith('audit_log_') ? name.slice('audit_log_'.length) : name}`;
      await q(`ALTER INDEX ${s}.${ident(name)} RENAME TO ${ident(legacyName)}`);
    }
    const checks = await q<{ name: string; def: string }>(
      `SELECT conname AS name, pg_catalog.pg_get_constraintdef(oid) AS def FROM pg_catalog.pg_constraint
       WHERE conrelid = $1::regclass AND contype = 'c' AND conname <> $2 ORDER BY conname`,
      [`${s}.audit_log_legacy`, LEGACY_BOUND],
    );
    const columns = (
      await q<{ name: string }>(
        `SELECT attname AS name FROM pg_catalog.pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
        [`${s}.audit_log_legacy`],
      )
    )
      .map((c) => ident(c.name))
      .join(', ');
    // The rows no month can hold before the first partitions exist go to the default partition, tx and all.
    await q(`CREATE TABLE ${s}.audit_log_default (LIKE ${s}.audit_log_legacy INCLUDING DEFAULTS)`);
    await q(
      `INSERT INTO ${s}.audit_log_default (${columns}) SELECT ${columns} FROM ${s}.audit_log_legacy WHERE NOT (occurred_at < ${boundSql})`,
    );
    for (const { name, def } of checks) await q(`ALTER TABLE ${s}.audit_log_default ADD CONSTRAINT ${ident(name)} ${def}`);
    await q(`ALTER TABLE ${s}.audit_log_legacy DISABLE TRIGGER audit_log_no_update_delete`);
    await q(`DELETE FROM ${s}.audit_log_legacy WHERE NOT (occurred_at < ${boundSql})`);
    await q(`ALTER TABLE ${s}.audit_log_legacy ENABLE TRIGGER audit_log_no_update_delete`);
    if (!prepared) await q(`ALTER TABLE ${s}.audit_log_legacy ADD CONSTRAINT ${LEGACY_BOUND} CHECK (occurred_at < ${boundSql})`);
    // The key of a partitioned table holds the partition key: (id, occurred_at).
    const [{ found }] = await q<{ found: number }>(`SELECT count(*)::int AS found FROM pg_catalog.pg_class WHERE oid = to_regclass($1)`, [
      `${s}.audit_log_legacy_id_occurred_at_key`,
    ]);
    if (found === 0) await q(`CREATE UNIQUE INDEX audit_log_legacy_id_occurred_at_key ON ${s}.audit_log_legacy (id, occurred_at)`);
    const [pkey] = await q<{ name: string }>(
      `SELECT conname AS name FROM pg_catalog.pg_constraint WHERE conrelid = $1::regclass AND contype = 'p'`,
      [`${s}.audit_log_legacy`],
    );
    if (pkey) await q(`ALTER TABLE ${s}.audit_log_legacy DROP CONSTRAINT ${ident(pkey.name)}`);
    await q(
      `ALTER TABLE ${s}.audit_log_legacy ADD CONSTRAINT audit_log_legacy_pkey PRIMARY KEY USING INDEX audit_log_legacy_id_occurred_at_key`,
    );
    // The parent's row triggers are cloned onto each partition when it is attached.
    const rowTriggers = await q<{ name: string; def: string }>(
      `SELECT tgname AS name, pg_catalog.pg_get_triggerdef(oid) AS def FROM pg_catalog.pg_trigger
       WHERE tgrelid = $1::regclass AND NOT tgisinternal AND (tgtype & 1) = 1 ORDER BY tgname`,
      [`${s}.audit_log_legacy`],
    );
    for (const { name } of rowTriggers) await q(`DROP TRIGGER ${ident(name)} ON ${s}.audit_log_legacy`);
    await q(`CREATE TABLE ${s}.audit_log (LIKE ${s}.audit_log_legacy INCLUDING DEFAULTS) PARTITION BY RANGE (occurred_at)`);
    for (const { name, def } of checks) await q(`ALTER TABLE ${s}.audit_log ADD CONSTRAINT ${ident(name)} ${def}`);
    await q(`ALTER TABLE ${s}.audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id, occurred_at)`);
    for (const { name } of await q<{ name: string }>(
      `SELECT c.relname AS name FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
       WHERE i.indrelid = $1::regclass AND NOT i.indisprimary ORDER BY c.relname`,
      [`${s}.audit_log_legacy`],
    )) {
      const [{ def }] = await q<{ def: string }>(`SELECT pg_catalog.pg_get_indexdef($1::regclass) AS def`, [`${s}.${ident(name)}`]);
      // "CREATE [UNIQUE] INDEX audit_log_legacy_x ON schema.audit_log_legacy USING …": the same on the parent.
      const on = def.indexOf(' USING ');
      const unique = def.startsWith('CREATE UNIQUE') ? 'UNIQUE ' : '';
      await q(`CREATE ${unique}INDEX ${ident(name.replace(/^audit_log_legacy_/, 'audit_log_'))} ON ${s}.audit_log${def.slice(on)}`);
    }
    await q(`ALTER TABLE ${s}.audit_log ATTACH PARTITION ${s}.audit_log_legacy FOR VALUES FROM (MINVALUE) TO (${boundSql})`);
    await q(`ALTER TABLE ${s}.audit_log ATTACH PARTITION ${s}.audit_log_default DEFAULT`);
    for (const { def } of rowTriggers) await q(def.replace(/ ON \S*audit_log_legacy /, ` ON ${s}.audit_log `));
    for (const table of ['audit_log', 'audit_log_default']) {
      await q(
        `CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON ${s}.${table} FOR EACH STATEMENT EXECUTE FUNCTION ${s}.audit_log_refuse_change()`,
      );
    }
    // The same grants as before, on the table the application names.
    for (const { grantee, privilege } of await q<{ grantee: string; privilege: string }>(
      `SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r.rolname) END AS grantee, a.privilege_type AS privilege
       FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
       WHERE c.oid = $1::regclass AND a.grantee <> c.relowner`,
      [`${s}.audit_log_legacy`],
    )) {
      await q(`GRANT ${privilege} ON ${s}.audit_log TO ${grantee}`);
    }
  }

  async down(): Promise<void> {
    throw new Error('AuditPartitions1765000000000 cannot be reverted automatically: see docs/LIFECYCLE.md');
  }
}

/**
 * `audit_log_create_partitions(months_ahead)`: creates the monthly partitions of this month and
 * the next `months_ahead` that no partition covers yet, each after moving the default
 * partition's rows of its month into it (their `tx` and every other column kept), and answers
 * `(created, moved, default_rows, covered_until)`. One caller at a time (an advisory lock);
 * each lock waited for at most 5 s.
 */
async function createPartitionFunction(
  q: <T = Record<string, unknown>>(sql: string, parameters?: unknown[]) => Promise<T[]>,
  schema: string,
): Promise<void> {
  const s = ident(schema);
  const lit = (text: string) => `'${text.replaceAll("'", "''")}'`;
  await q(`
    CREATE OR REPLACE FUNCTION ${s}.audit_log_create_partitions(months_ahead integer DEFAULT 3)
    RETURNS TABLE (created integer, moved bigint, default_rows bigint, covered_until timestamptz)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET lock_timeout = '5s'
    AS $fn$
    DECLARE
      parent regclass := ${lit(`${s}.audit_log`)}::regclass;
      dflt regclass;
      cols text;
      m timestamptz;
      taken boolean;
      part text;
      n bigint;
    BEGIN
      IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 24 THEN
        RAISE EXCEPTION 'months_ahead must be 0 to 24, not %', months_ahead USING ERRCODE = 'invalid_parameter_value';
      END IF;
      PERFORM pg_advisory_xact_lock(hashtext('audit_log_create_partitions'));
      created := 0;
      moved := 0;
      SELECT c.oid INTO dflt FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
        WHERE h.inhparent = parent AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT';
      -- No insert may reach the default partition between copying its rows of a month and removing them.
      IF dflt IS NOT NULL THEN
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', dflt);
      END IF;
      SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
        FROM pg_attribute WHERE attrelid = parent AND attnum > 0 AND NOT attisdropped;
      FOR i IN 0..months_ahead LOOP
        m := date_trunc('month', now()) + make_interval(months => i);
        SELECT coalesce(bool_or(lo < m + interval '1 month' AND hi > m), false) INTO taken FROM (
          SELECT CASE WHEN b[1] = 'MINVALUE' THEN '-infinity' ELSE b[1]::timestamptz END AS lo,
                 CASE WHEN b[2] = 'MAXVALUE' THEN 'infinity' ELSE b[2]::timestamptz END AS hi
          FROM (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''?([^'')]*)''?\\) TO \\(''?([^'')]*)''?\\)') AS b
                FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = parent) AS bounds
          WHERE b IS NOT NULL) AS ranges;
        CONTINUE WHEN taken;
        part := 'audit_log_p' || to_char(m, 'YYYY_MM');
        EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', ${lit(schema)}, part, parent);
        EXECUTE format('ALTER TABLE %I.%I ADD CONSTRAINT %I CHECK (occurred_at >= %L AND occurred_at < %L)',
          ${lit(schema)}, part, part || '_bound', m, m + interval '1 month');
        IF dflt IS NOT NULL THEN
          EXECUTE format('INSERT INTO %I.%I (%s) SELECT %s FROM %s WHERE occurred_at >= $1 AND occurred_at < $2', ${lit(schema)}, part, cols, cols, dflt)
            USING m, m + interval '1 month';
          GET DIAGNOSTICS n = ROW_COUNT;
          IF n > 0 THEN
            EXECUTE format('ALTER TABLE %s DISABLE TRIGGER audit_log_no_update_delete', dflt);
            EXECUTE format('DELETE FROM %s WHERE occurred_at >= $1 AND occurred_at < $2', dflt) USING m, m + interval '1 month';
            EXECUTE format('ALTER TABLE %s ENABLE TRIGGER audit_log_no_update_delete', dflt);
            moved := moved + n;
          END IF;
        END IF;
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)', parent, ${lit(schema)}, part, m, m + interval '1 month');
        EXECUTE format('CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON %I.%I FOR EACH STATEMENT EXECUTE FUNCTION %I.audit_log_refuse_change()',
          ${lit(schema)}, part, ${lit(schema)});
        created := created + 1;
      END LOOP;
      default_rows := 0;
      IF dflt IS NOT NULL THEN
        EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 100000) AS d', dflt) INTO default_rows;
      END IF;
      SELECT max(CASE WHEN b[1] = 'MAXVALUE' THEN 'infinity' ELSE b[1]::timestamptz END) INTO covered_until
        FROM (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''?([^'')]*)''?\\)') AS b
              FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = parent) AS bounds
        WHERE b IS NOT NULL;
      RETURN NEXT;
    END
    $fn$`);
  await q(`REVOKE ALL ON FUNCTION ${s}.audit_log_create_partitions(integer) FROM PUBLIC`);
}
