import { type MigrationInterface, type QueryRunner } from 'typeorm';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * Retention that keeps the trail verifiable (issue 21, see docs/LIFECYCLE.md):
 *
 * - `audit_seal.retention_month`, `retention_rows`, `retention_covered`: set on a retention
 *   checkpoint only (NULL on every seal), the month removed, its row count and the hash of the
 *   newest seal that covered one of its rows. Nullable without a default: nothing is rewritten.
 * - `audit_log_retire_month(month date, keep_months integer)`: a SECURITY DEFINER function, owned
 *   by the migration's role (the table's owner), that detaches and drops the partition of exactly
 *   that month, and nothing else, after checking, with the partition locked against inserts
 *   (SHARE): that the month ended at least `keep_months` (1 to 1200) whole months before the current
 *   one (UTC); that the newest row of `audit_seal` is the retention checkpoint of that month,
 *   continuing the seal before it and counting exactly the partition's rows; and that no row of the
 *   month lies after the newest seal's last row (every row is in a sealed range). The application's
 *   role thus never gets DROP rights and cannot remove a month that is not wholly sealed, is
 *   within its window, or has no checkpoint. EXECUTE is revoked from PUBLIC: grant it to the role
 *   that runs retention. Each lock is waited for at most 5 s (`DETACH PARTITION` takes ACCESS
 *   EXCLUSIVE on `audit_log` until the commit: inserts wait that long at most).
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditRetention1765100000000 implements MigrationInterface {
  name = 'AuditRetention1765100000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    const lit = (text: string) => `'${text.replaceAll("'", "''")}'`;
    await queryRunner.query(`ALTER TABLE ${s}.audit_seal ADD COLUMN IF NOT EXISTS retention_month date`);
    await queryRunner.query(`ALTER TABLE ${s}.audit_seal ADD COLUMN IF NOT EXISTS retention_rows bigint`);
    await queryRunner.query(`ALTER TABLE ${s}.audit_seal ADD COLUMN IF NOT EXISTS retention_covered bytea`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_retire_month(month date, keep_months integer)
      RETURNS bigint
      LANGUAGE plpgsql SECURITY DEFINER
      SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET lock_timeout = '5s'
      AS $fn$
      DECLARE
        parent regclass := ${lit(`${s}.audit_log`)}::regclass;
        seals regclass := ${lit(`${s}.audit_seal`)}::regclass;
        m timestamptz;
        cutoff timestamptz;
        part regclass;
        cp record;
        prev record;
        unsealed boolean;
        n bigint;
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
        -- No row may join the month between the checks and the drop.
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', part);
        EXECUTE format('SELECT seq, prev_hash, last_tx, last_id, retention_month, retention_rows FROM %s ORDER BY seq DESC LIMIT 1', seals) INTO cp;
        IF cp.seq IS NULL OR cp.retention_month IS DISTINCT FROM month THEN
          RAISE EXCEPTION 'the newest row of audit_seal must be the retention checkpoint of month %', to_char(m, 'YYYY-MM')
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        EXECUTE format('SELECT hash, last_tx, last_id FROM %s WHERE seq = $1', seals) INTO prev USING cp.seq - 1;
        IF prev.hash IS NULL OR prev.hash <> cp.prev_hash OR prev.last_tx IS DISTINCT FROM cp.last_tx OR prev.last_id <> cp.last_id THEN
          RAISE EXCEPTION 'the retention checkpoint % does not continue seal %', cp.seq, cp.seq - 1 USING ERRCODE = 'insufficient_privilege';
        END IF;
        -- Sealing order is (tx NULLS FIRST, id): a row after the newest seal's last row is not sealed yet.
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s AS l WHERE (l.tx IS NULL AND $1::bigint IS NULL AND l.id > $2)
            OR ($1::bigint IS NULL AND l.tx IS NOT NULL) OR (l.tx >= $1 AND (l.tx > $1 OR l.id > $2)))', part)
          INTO unsealed USING cp.last_tx, cp.last_id;
        IF unsealed THEN
          RAISE EXCEPTION 'month % holds rows not sealed yet', to_char(m, 'YYYY-MM') USING ERRCODE = 'insufficient_privilege';
        END IF;
        EXECUTE format('SELECT count(*) FROM %s', part) INTO n;
        IF n IS DISTINCT FROM cp.retention_rows THEN
          RAISE EXCEPTION 'the retention checkpoint counts % rows, month % holds %', cp.retention_rows, to_char(m, 'YYYY-MM'), n
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', parent, part);
        EXECUTE format('DROP TABLE %s', part);
        RETURN n;
      END
      $fn$`);
    await queryRunner.query(`REVOKE ALL ON FUNCTION ${s}.audit_log_retire_month(date, integer) FROM PUBLIC`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION IF EXISTS audit_log_retire_month(date, integer)`);
    await queryRunner.query(`ALTER TABLE audit_seal DROP COLUMN IF EXISTS retention_covered`);
    await queryRunner.query(`ALTER TABLE audit_seal DROP COLUMN IF EXISTS retention_rows`);
    await queryRunner.query(`ALTER TABLE audit_seal DROP COLUMN IF EXISTS retention_month`);
  }
}
