import { type MigrationInterface, type QueryRunner } from 'typeorm';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** A single-quoted SQL literal. */
const lit = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** The columns that hold personal values (docs/PRIVACY.md). */
const PERSONAL_COLUMNS = ['user_id', 'ip', 'user_agent', 'personal'];
const PERSONAL_COLUMNS_SQL = PERSONAL_COLUMNS.map(lit).join(', ');

/** The roles, other than the owner, that may execute `fn` (a regprocedure text). */
async function executors(queryRunner: QueryRunner, fn: string): Promise<string[]> {
  const rows = (await queryRunner.query(
    `SELECT a.grantee::regrole::text AS role FROM pg_proc p, aclexplode(p.proacl) AS a
     WHERE p.oid = $1::regprocedure AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner AND a.grantee <> 0`,
    [fn],
  )) as { role: string }[];
  return rows.map((r) => r.role);
}

/**
 * Two kinds of upkeep of `audit_log`'s partitions (issues 21 and 22, docs/LIFECYCLE.md "Past
 * months", docs/PRIVACY.md "Planner statistics").
 *
 * **Past months get their partitions too.** Until now `audit_log_create_partitions(months_ahead)`
 * made only this month's partition and those ahead: a month in the past without one (a legacy
 * bound prepared months before the partition migration ran, or an application stopped for longer
 * than its months ahead) kept its rows in the default partition for good, where retention never
 * removes them. The function is now a wrapper under the same name and signature: it first gives
 * each past month that has rows in the default partition its own partition (created, the rows
 * copied with every column, `tx` included, removed from the default partition, then attached),
 * and then calls the previous function, kept as `audit_log_create_partitions_ahead(integer)`, for
 * this month and the months ahead. The counts it returns cover both. Months without rows get no
 * partition. The roles that could execute the function keep that grant on the wrapper, and lose
 * it on the inner function: one entry point. Locks: as before (SHARE ROW EXCLUSIVE on the default
 * partition while rows move, ACCESS EXCLUSIVE on each new partition until the commit), plus one
 * read of the default partition per call for its months before this one.
 *
 * **No planner statistics of personal columns.** `ANALYZE` (autovacuum's, or `audit-verify`'s on
 * a table without statistics) keeps samples of each column in `pg_statistic`, which any role
 * that may SELECT the table reads through `pg_stats`: user ids, IPs, user agents and the
 * `personal` column's values and salts, left there after an erasure. The statistics target of
 * `user_id`, `ip`, `user_agent` and `personal` becomes 0 on `audit_log` and every partition (the
 * wrapper sets it on each partition it finds without it, so partitions made later too), and the
 * samples already gathered are removed: with `pg_clear_attribute_stats` (PostgreSQL 18), else
 * from `pg_statistic` when the migration runs as a superuser; otherwise a notice names what an
 * administrator must run (docs/RUNBOOK.md). The planner then estimates those columns' selectivity
 * by its defaults; the read indexes are still used. The samples are found through the `pg_stats`
 * view rather than in `pg_statistic`, which only a superuser may read: the migrations also run as
 * a table owner that is not a superuser (the master user of a managed service), which reading
 * `pg_statistic` stopped at `permission denied`. `pg_stats` shows such an owner its tables'
 * samples, and a superuser the very rows of `pg_statistic`: what a superuser's run removes is the
 * same either way, and an owner on PostgreSQL 18 removes them itself.
 *
 * **Retired months stay retired.** A past month that retention removed (a checkpoint in
 * `audit_seal`) gets no partition again: a row dated in it (a retired row written back) waits in
 * the default partition, and the sealer names it. A partial index on `audit_seal(retention_month)`
 * keeps the sealer's and the function's look-up of those months small.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditPartitionUpkeep1765800000000 implements MigrationInterface {
  name = 'AuditPartitionUpkeep1765800000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    // Run again (another migrations table on the same database), it finds the previous function renamed already.
    await queryRunner.query(`SELECT pg_advisory_xact_lock(hashtext('audit_log_create_partitions'))`);
    const [{ renamed }] = (await queryRunner.query(`SELECT to_regprocedure($1) IS NOT NULL AS renamed`, [
      `${s}.audit_log_create_partitions_ahead(integer)`,
    ])) as { renamed: boolean }[];
    const grantees = renamed ? [] : await executors(queryRunner, `${s}.audit_log_create_partitions(integer)`);
    if (!renamed) {
      await queryRunner.query(`ALTER FUNCTION ${s}.audit_log_create_partitions(integer) RENAME TO audit_log_create_partitions_ahead`);
    }
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_create_partitions(months_ahead integer DEFAULT 3)
      RETURNS TABLE (created integer, moved bigint, default_rows bigint, covered_until timestamptz)
      LANGUAGE plpgsql SECURITY DEFINER
      SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET lock_timeout = '5s'
      AS $fn$
      DECLARE
        parent regclass := ${lit(`${s}.audit_log`)}::regclass;
        dflt regclass;
        cols text;
        months timestamptz[];
        m timestamptz;
        taken boolean;
        part text;
        col name;
        n bigint;
        past_created integer := 0;
        past_moved bigint := 0;
        ahead record;
      BEGIN
        IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 24 THEN
          RAISE EXCEPTION 'months_ahead must be 0 to 24, not %', months_ahead USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM pg_advisory_xact_lock(hashtext('audit_log_create_partitions'));
        SELECT c.oid INTO dflt FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
          WHERE h.inhparent = parent AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT';
        IF dflt IS NOT NULL THEN
          -- No insert may reach the default partition between copying its rows of a month and removing them.
          EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', dflt);
          SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
            FROM pg_attribute WHERE attrelid = parent AND attnum > 0 AND NOT attisdropped;
          -- Finite dates only: an 'infinity' row of an old table has no month. Read whole before the
          -- loop: the default partition's trigger cannot be turned off while a cursor reads it.
          EXECUTE format(
            'SELECT coalesce(array_agg(DISTINCT date_trunc(''month'', occurred_at) ORDER BY date_trunc(''month'', occurred_at)), ''{}'') FROM %s
             WHERE occurred_at >= ''0001-01-01 00:00:00+00'' AND occurred_at < date_trunc(''month'', now())', dflt) INTO months;
          FOREACH m IN ARRAY months
          LOOP
            SELECT coalesce(bool_or(lo < m + interval '1 month' AND hi > m), false) INTO taken FROM (
              SELECT CASE WHEN b[1] = 'MINVALUE' THEN '-infinity' ELSE b[1]::timestamptz END AS lo,
                     CASE WHEN b[2] = 'MAXVALUE' THEN 'infinity' ELSE b[2]::timestamptz END AS hi
              FROM (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''?([^'')]*)''?\\) TO \\(''?([^'')]*)''?\\)') AS b
                    FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = parent) AS bounds
              WHERE b IS NOT NULL) AS ranges;
            -- A month retention removed stays removed: its rows wait in the default partition, named by the sealer.
            CONTINUE WHEN taken OR EXISTS (SELECT FROM ${s}.audit_seal AS r WHERE r.retention_month = m::date);
            part := 'audit_log_p' || to_char(m, 'YYYY_MM');
            EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', ${lit(schema)}, part, parent);
            EXECUTE format('ALTER TABLE %I.%I ADD CONSTRAINT %I CHECK (occurred_at >= %L AND occurred_at < %L)',
              ${lit(schema)}, part, part || '_bound', m, m + interval '1 month');
            -- Copied before the partition is attached: the parent's row triggers (tx set by the database) do not fire.
            EXECUTE format('INSERT INTO %I.%I (%s) SELECT %s FROM %s WHERE occurred_at >= $1 AND occurred_at < $2', ${lit(schema)}, part, cols, cols, dflt)
              USING m, m + interval '1 month';
            GET DIAGNOSTICS n = ROW_COUNT;
            EXECUTE format('ALTER TABLE %s DISABLE TRIGGER audit_log_no_update_delete', dflt);
            EXECUTE format('DELETE FROM %s WHERE occurred_at >= $1 AND occurred_at < $2', dflt) USING m, m + interval '1 month';
            EXECUTE format('ALTER TABLE %s ENABLE TRIGGER audit_log_no_update_delete', dflt);
            EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)', parent, ${lit(schema)}, part, m, m + interval '1 month');
            EXECUTE format('CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON %I.%I FOR EACH STATEMENT EXECUTE FUNCTION %I.audit_log_refuse_change()',
              ${lit(schema)}, part, ${lit(schema)});
            past_created := past_created + 1;
            past_moved := past_moved + n;
          END LOOP;
        END IF;
        SELECT * INTO ahead FROM ${s}.audit_log_create_partitions_ahead(months_ahead);
        -- Personal columns keep no planner statistics on any partition (pg_stats would show their values).
        FOR part, col IN
          SELECT c.oid::regclass::text, a.attname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
            JOIN pg_attribute a ON a.attrelid = c.oid
          WHERE h.inhparent = parent AND a.attname IN (${PERSONAL_COLUMNS_SQL}) AND a.attstattarget IS DISTINCT FROM 0
        LOOP
          EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS 0', part, col);
        END LOOP;
        created := ahead.created + past_created;
        moved := ahead.moved + past_moved;
        default_rows := ahead.default_rows;
        covered_until := ahead.covered_until;
        RETURN NEXT;
      END
      $fn$`);
    await queryRunner.query(`REVOKE ALL ON FUNCTION ${s}.audit_log_create_partitions(integer) FROM PUBLIC`);
    for (const role of grantees) {
      await queryRunner.query(`GRANT EXECUTE ON FUNCTION ${s}.audit_log_create_partitions(integer) TO ${role}`);
      await queryRunner.query(`REVOKE EXECUTE ON FUNCTION ${s}.audit_log_create_partitions_ahead(integer) FROM ${role}`);
    }
    await forgetPersonalStatistics(queryRunner, s);
    await queryRunner.query(
      `CREATE INDEX IF NOT EXISTS audit_seal_retention_month ON ${s}.audit_seal (retention_month) WHERE retention_month IS NOT NULL`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    for (const column of PERSONAL_COLUMNS)
      await queryRunner.query(`ALTER TABLE ${s}.audit_log ALTER COLUMN ${ident(column)} SET STATISTICS -1`);
    const grantees = await executors(queryRunner, `${s}.audit_log_create_partitions(integer)`);
    await queryRunner.query(`DROP FUNCTION ${s}.audit_log_create_partitions(integer)`);
    await queryRunner.query(`ALTER FUNCTION ${s}.audit_log_create_partitions_ahead(integer) RENAME TO audit_log_create_partitions`);
    for (const role of grantees) await queryRunner.query(`GRANT EXECUTE ON FUNCTION ${s}.audit_log_create_partitions(integer) TO ${role}`);
  }
}

/**
 * Sets the statistics target of the personal columns to 0 on `audit_log` (and so on every
 * partition) and removes the samples already gathered, as far as this role can.
 */
async function forgetPersonalStatistics(queryRunner: QueryRunner, s: string): Promise<void> {
  for (const column of PERSONAL_COLUMNS)
    await queryRunner.query(`ALTER TABLE ${s}.audit_log ALTER COLUMN ${ident(column)} SET STATISTICS 0`);
  await queryRunner.query(`
    DO $do$
    DECLARE
      rel regclass;
      col name;
      clear boolean := to_regprocedure('pg_catalog.pg_clear_attribute_stats(text, text, text, boolean)') IS NOT NULL;
      super boolean := (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
      left_over text := '';
    BEGIN
      FOR rel, col IN
        SELECT c.oid::regclass, s.attname FROM pg_catalog.pg_stats s
          JOIN pg_catalog.pg_namespace n ON n.nspname = s.schemaname
          JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename
        WHERE s.attname IN (${PERSONAL_COLUMNS_SQL})
          AND (c.oid = ${lit(`${s}.audit_log`)}::regclass
               OR c.oid IN (SELECT inhrelid FROM pg_catalog.pg_inherits WHERE inhparent = ${lit(`${s}.audit_log`)}::regclass))
      LOOP
        IF clear THEN
          PERFORM pg_catalog.pg_clear_attribute_stats(n.nspname::text, c.relname::text, col::text, inh)
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, (VALUES (true), (false)) AS i(inh)
            WHERE c.oid = rel;
        ELSIF super THEN
          DELETE FROM pg_catalog.pg_statistic WHERE starelid = rel
            AND staattnum = (SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid = rel AND attname = col);
        ELSE
          left_over := left_over || format(' %s.%I', rel, col);
        END IF;
      END LOOP;
      IF left_over <> '' THEN
        RAISE NOTICE 'planner statistics of personal columns remain (%): a superuser removes them, see docs/RUNBOOK.md', left_over;
      END IF;
    END
    $do$`);
}
