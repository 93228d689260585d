import { type MigrationInterface, type QueryRunner } from 'typeorm';
import { monthCheckSql } from '../src/audit/lifecycle/month-check-sql';
import { AuditRetentionChecks1765300000000 } from './1765300000000-AuditRetentionChecks';
import { AuditRetireWithoutWaiting1765900000000 } from './1765900000000-AuditRetireWithoutWaiting';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** The month's check, as `format()` takes it: `%1$s` the partition, `%2$s` the seal table. */
const CHECK_SQL = monthCheckSql('%1$s', '%2$s');

/** What the month holds of erasures (as `lifecycle/checkpoint-erasures.ts` states it), `%1$s` the partition. */
const ERASURES_SQL = `SELECT pg_catalog.jsonb_build_object(
          'erased', COALESCE((SELECT pg_catalog.jsonb_object_agg(x.e, x.n) FROM (
              SELECT pg_catalog.substring(l.personal, '^\\{"erased":"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"\\}$') AS e, pg_catalog.count(*) AS n
              FROM %1$s AS l WHERE true AND l.personal LIKE '{"erased":%%' GROUP BY 1) AS x WHERE x.e IS NOT NULL), '{}'::jsonb),
          'entries', COALESCE((SELECT pg_catalog.jsonb_object_agg(y.e, pg_catalog.jsonb_build_object('rows', y.n, 'subject', y.subject)) FROM (
              SELECT l.changes -> 'erasure' ->> 'id' AS e,
                pg_catalog.sum(CASE WHEN (l.changes -> 'erasure' ->> 'rows') ~ '^[0-9]{1,15}$' THEN (l.changes -> 'erasure' ->> 'rows')::bigint ELSE 0 END) AS n,
                pg_catalog.min(l.changes -> 'erasure' ->> 'subject') AS subject
              FROM %1$s AS l WHERE true AND l.action OPERATOR(pg_catalog.=) 'audit_erasure' GROUP BY 1) AS y WHERE y.e IS NOT NULL), '{}'::jsonb))`;

/**
 * `audit_log_retire_month(month, keep_months)` replaced (same signature, owner, SECURITY DEFINER,
 * grants and pinned settings, `lock_timeout` 1 ms) so that it matches each row of the month to its
 * seal's manifest entry by id and leaf prefix, as retention's own code does, not by id alone: a
 * sealed row whose content was changed (by a superuser, triggers off) is no longer the row its seal
 * sealed, and keeps its month whatever code calls the function (docs/LIFECYCLE.md). The month is
 * read once (the rows after the newest seal are counted in the same read, not in a read of
 * their own); retention's code runs the same statement ({@link monthCheckSql}) before it writes
 * the checkpoint. A new row encoding comes with a migration that replaces the function again.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditRetireByLeaf1766100000000 implements MigrationInterface {
  name = 'AuditRetireByLeaf1766100000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    const lit = (text: string) => `'${text.replaceAll("'", "''")}'`;
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS ${s}.audit_month_check (xact xid8 NOT NULL, part oid NOT NULL, filenode oid NOT NULL, newest bigint,
        n bigint NOT NULL, unsealed bigint NOT NULL, left_out bigint NOT NULL, marked bytea NOT NULL, covered bigint, held jsonb NOT NULL,
        changes bigint NOT NULL, PRIMARY KEY (xact, part))`);
    await queryRunner.query(`REVOKE ALL ON ${s}.audit_month_check FROM PUBLIC`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_check_month(month date)
      RETURNS TABLE (n bigint, unsealed bigint, left_out bigint, marked bytea, covered bigint, erasures text)
      LANGUAGE plpgsql SECURITY DEFINER
      SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET lock_timeout = '1ms' SET work_mem = '64MB' SET enable_nestloop = off SET enable_mergejoin = off
      AS $fn$
      DECLARE
        parent regclass := ${lit(`${s}.audit_log`)}::regclass;
        seals regclass := ${lit(`${s}.audit_seal`)}::regclass;
        checks regclass := ${lit(`${s}.audit_month_check`)}::regclass;
        m timestamptz;
        part regclass;
        k record;
        held jsonb;
        newest bigint;
      BEGIN
        IF month IS NULL OR month <> date_trunc('month', month)::date THEN
          RAISE EXCEPTION 'month must be the first day of a month, not %', month USING ERRCODE = 'invalid_parameter_value';
        END IF;
        m := month::timestamptz;
        SELECT c.oid INTO part FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
          WHERE h.inhparent = parent AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES FROM (%L) TO (%L)', m, m + interval '1 month');
        IF part IS NULL THEN
          RAISE EXCEPTION 'no partition of audit_log holds exactly the month %', to_char(m, 'YYYY-MM') USING ERRCODE = 'undefined_table';
        END IF;
        -- The lock first: the check then sees every row the month will hold until this transaction ends.
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', part);
        EXECUTE format('SELECT max(seq) FROM %s', seals) INTO newest;
        EXECUTE format($sql$${CHECK_SQL}$sql$, part, seals) INTO k;
        EXECUTE format($sql$${ERASURES_SQL}$sql$, part) INTO held;
        EXECUTE format('DELETE FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1', checks) USING part;
        EXECUTE format('INSERT INTO %s (xact, part, filenode, newest, n, unsealed, left_out, marked, covered, held, changes)
            VALUES (pg_current_xact_id(), $1, pg_relation_filenode($1), $2, $3, $4, $5, $6, $7, $8,
              pg_stat_get_xact_tuples_inserted($1) + pg_stat_get_xact_tuples_updated($1) + pg_stat_get_xact_tuples_deleted($1))', checks)
          USING part, newest, k.n, k.unsealed, k.left_out, k.marked, k.covered, held;
        RETURN QUERY SELECT k.n, k.unsealed, k.left_out, k.marked, k.covered, held::text;
      END
      $fn$`);
    await queryRunner.query(`REVOKE ALL ON FUNCTION ${s}.audit_log_check_month(date) FROM PUBLIC`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_retire_month(month date, keep_months integer)
      RETURNS bigint
      LANGUAGE plpgsql SECURITY DEFINER
      SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET lock_timeout = '1ms' SET work_mem = '64MB' SET enable_nestloop = off SET enable_mergejoin = off
      AS $fn$
      DECLARE
        parent regclass := ${lit(`${s}.audit_log`)}::regclass;
        seals regclass := ${lit(`${s}.audit_seal`)}::regclass;
        checks regclass := ${lit(`${s}.audit_month_check`)}::regclass;
        chk record;
        m timestamptz;
        cutoff timestamptz;
        part regclass;
        cp record;
        prev record;
        unsealed_rows bigint;
        n bigint;
        left_out bigint;
        marked bytea;
        carried jsonb;
        held jsonb;
      BEGIN
        IF keep_months IS NULL OR keep_months < 1 OR keep_months > 1200 THEN
          RAISE EXCEPTION 'keep_months must be 1 to 1200, not %', keep_months USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF month IS NULL OR month <> date_trunc('month', month)::date THEN
          RAISE EXCEPTION 'month must be the first day of a month, not %', month USING ERRCODE = 'invalid_parameter_value';
        END IF;
        m := month::timestamptz;
        cutoff := date_trunc('month', now()) - make_interval(months => keep_months);
        IF m + interval '1 month' > cutoff THEN
          RAISE EXCEPTION 'month % is within the retention window of % months: only months before % may go', to_char(m, 'YYYY-MM'), keep_months, to_char(cutoff, 'YYYY-MM')
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        SELECT c.oid INTO part FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
          WHERE h.inhparent = parent AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES FROM (%L) TO (%L)', m, m + interval '1 month');
        IF part IS NULL THEN
          RAISE EXCEPTION 'no partition of audit_log holds exactly the month %', to_char(m, 'YYYY-MM') USING ERRCODE = 'undefined_table';
        END IF;
        -- No row may join the month, nor be erased, between the checks and the drop.
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', part);
        EXECUTE format('SELECT seq, prev_hash, last_tx, last_id, retention_month, retention_rows, manifest, retention_erasures FROM %s ORDER BY seq DESC LIMIT 1', seals) INTO cp;
        IF cp.seq IS NULL OR cp.retention_month IS DISTINCT FROM month THEN
          RAISE EXCEPTION 'the newest row of audit_seal must be the retention checkpoint of month %', to_char(m, 'YYYY-MM')
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        EXECUTE format('SELECT hash, last_tx, last_id FROM %s WHERE seq = $1', seals) INTO prev USING cp.seq - 1;
        IF prev.hash IS NULL OR prev.hash <> cp.prev_hash OR prev.last_tx IS DISTINCT FROM cp.last_tx OR prev.last_id <> cp.last_id THEN
          RAISE EXCEPTION 'the retention checkpoint % does not continue seal %', cp.seq, cp.seq - 1 USING ERRCODE = 'insufficient_privilege';
        END IF;
        -- The month's check this transaction made with audit_log_check_month, under the same SHARE lock, is
        -- taken as it is while nothing changed since: no row of the partition written, updated or deleted
        -- by this transaction (its counters), the same file (no TRUNCATE or rewrite), no link added but the checkpoint.
        EXECUTE format('SELECT k.* FROM %s AS k WHERE k.xact = pg_current_xact_id() AND k.part = $1', checks) INTO chk USING part;
        IF chk.xact IS NOT NULL AND chk.filenode = pg_relation_filenode(part)
            AND chk.changes = pg_stat_get_xact_tuples_inserted(part) + pg_stat_get_xact_tuples_updated(part) + pg_stat_get_xact_tuples_deleted(part)
            AND chk.newest IS NOT DISTINCT FROM cp.seq - 1
            -- Counters that count, and a check that saw every row committed before its lock.
            AND current_setting('track_counts')::boolean AND current_setting('transaction_isolation') = 'read committed' THEN
          n := chk.n;
          unsealed_rows := chk.unsealed;
          left_out := chk.left_out;
          marked := chk.marked;
          held := chk.held;
        ELSE
          -- One read of the month: each row matched to the manifest entry of its id and leaf prefix in the
          -- seal whose range holds it (lifecycle/month-check-sql.ts); the entries so found are the
          -- checkpoint's manifest, bit for bit.
          EXECUTE format($sql$${CHECK_SQL}$sql$, part, seals) INTO n, unsealed_rows, left_out, marked;
          EXECUTE format($sql$${ERASURES_SQL}$sql$, part) INTO held;
        END IF;
        EXECUTE format('DELETE FROM %s AS k WHERE k.xact = pg_current_xact_id()', checks);
        IF unsealed_rows > 0 THEN
          RAISE EXCEPTION 'month % holds rows not sealed yet', to_char(m, 'YYYY-MM') USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF left_out > 0 THEN
          RAISE EXCEPTION 'month % holds % rows that no seal sealed (forged or invalid: see audit-verify)', to_char(m, 'YYYY-MM'), left_out
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF n IS DISTINCT FROM cp.retention_rows THEN
          RAISE EXCEPTION 'the retention checkpoint counts % rows, month % holds %', cp.retention_rows, to_char(m, 'YYYY-MM'), n
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        -- The checkpoint's manifest: per seal in seq order, its seq (8 bytes), its bitmap's length (4) and
        -- the bitmap, one bit per manifest entry (most significant first), set for the rows that go.
        IF marked <> cp.manifest THEN
          RAISE EXCEPTION 'the retention checkpoint''s manifest does not mark exactly the rows of month %', to_char(m, 'YYYY-MM')
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        -- What the month holds of erasures, as the checkpoint must carry it forward.
        BEGIN
          carried := cp.retention_erasures::jsonb;
        EXCEPTION WHEN others THEN
          carried := NULL;
        END;
        IF carried IS DISTINCT FROM held THEN
          RAISE EXCEPTION 'the retention checkpoint does not carry forward the erasures of month %: it holds %', to_char(m, 'YYYY-MM'), held
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', parent, part);
        EXECUTE format('DROP TABLE %s', part);
        RETURN n;
      END
      $fn$`);
    await queryRunner.query(`REVOKE ALL ON FUNCTION ${s}.audit_log_retire_month(date, integer) FROM PUBLIC`);
    // Whoever may retire a month may check one first (retention's code does, so that the month is read once).
    await queryRunner.query(`
      DO $$ DECLARE r record; BEGIN
        FOR r IN SELECT a.grantee::regrole::text AS role FROM pg_proc AS p, aclexplode(p.proacl) AS a
          WHERE p.oid = ${lit(`${s}.audit_log_retire_month(date, integer)`)}::regprocedure AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 LOOP
          EXECUTE format('GRANT EXECUTE ON FUNCTION %s.audit_log_check_month(date) TO %s', ${lit(s)}, r.role);
        END LOOP;
      END $$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    // The function as the two migrations before made it.
    await queryRunner.query(`DROP FUNCTION IF EXISTS audit_log_check_month(date)`);
    await queryRunner.query(`DROP TABLE IF EXISTS audit_month_check`);
    await new AuditRetentionChecks1765300000000().up(queryRunner);
    await new AuditRetireWithoutWaiting1765900000000().up(queryRunner);
  }
}
