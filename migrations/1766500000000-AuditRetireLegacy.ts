import { type MigrationInterface, type QueryRunner } from 'typeorm';
import { erasuresSql } from '../src/audit/lifecycle/checkpoint-erasures';
import { monthCheckSql } from '../src/audit/lifecycle/month-check-sql';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** The range's check, as `format()` takes it: `%1$s` the legacy partition, `%2$s` the seal table. */
const CHECK_SQL = monthCheckSql('%1$s', '%2$s');

/** What the range holds of erasures (`lifecycle/checkpoint-erasures.ts`), `@part@` the partition (it holds a `%`: no `format()`). */
const ERASURES_SQL = `SELECT ${erasuresSql('@part@ AS l WHERE true')}`;

/**
 * `audit_log_retire_legacy(keep_months)`: removes the legacy partition (`FROM (MINVALUE) TO
 * (<bound>)`, the table as it was before `AuditPartitions1765000000000`) whole, as
 * `audit_log_retire_month` removes a month (docs/LIFECYCLE.md, "The legacy partition"): a SECURITY
 * DEFINER function owned by the migration's role, EXECUTE revoked from PUBLIC and granted to no
 * one (the owner runs it, or a role it is granted to by hand), each lock waited for at most 1 ms.
 * With the partition locked against inserts (SHARE) it checks that its bound is at or before the
 * window's cutoff (`keep_months` whole months before the current one, UTC); that the newest row of
 * `audit_seal` is the partition's retention checkpoint (`retention_month` the last day before the
 * bound: a month's checkpoint holds a first day), continuing the seal before it; and, in one read of
 * the partition ({@link monthCheckSql}), that every row is one a seal sealed, none after the newest
 * seal, that the checkpoint counts them, marks exactly them in its manifest and carries forward
 * their erasures. Then it detaches and drops the partition; rows dated before the bound go to the
 * default partition from then on.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditRetireLegacy1766500000000 implements MigrationInterface {
  name = 'AuditRetireLegacy1766500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    const lit = (text: string) => `'${text.replaceAll("'", "''")}'`;
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_retire_legacy(keep_months integer)
      RETURNS bigint
      LANGUAGE plpgsql SECURITY DEFINER
      SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET lock_timeout = '1ms' SET work_mem = '64MB' SET enable_nestloop = off SET enable_mergejoin = off
      AS $fn$
      DECLARE
        parent regclass := ${lit(`${s}.audit_log`)}::regclass;
        seals regclass := ${lit(`${s}.audit_seal`)}::regclass;
        part regclass;
        bound timestamptz;
        cutoff timestamptz;
        last_day date;
        cp record;
        prev record;
        k record;
        held jsonb;
        carried jsonb;
      BEGIN
        IF keep_months IS NULL OR keep_months < 1 OR keep_months > 1200 THEN
          RAISE EXCEPTION 'keep_months must be 1 to 1200, not %', keep_months USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT c.oid, (regexp_match(pg_get_expr(c.relpartbound, c.oid), '^FOR VALUES FROM \\(MINVALUE\\) TO \\(''([^'']+)''\\)$'))[1]::timestamptz
          INTO part, bound
          FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
          WHERE h.inhparent = parent AND pg_get_expr(c.relpartbound, c.oid) LIKE 'FOR VALUES FROM (MINVALUE) TO (%';
        IF part IS NULL OR bound IS NULL THEN
          RAISE EXCEPTION 'audit_log has no legacy partition (FROM (MINVALUE) TO a time)' USING ERRCODE = 'undefined_table';
        END IF;
        IF bound <> date_trunc('month', bound) THEN
          RAISE EXCEPTION 'the legacy partition ends at %, not where a month begins', bound USING ERRCODE = 'invalid_parameter_value';
        END IF;
        cutoff := date_trunc('month', now()) - make_interval(months => keep_months);
        IF bound > cutoff THEN
          RAISE EXCEPTION 'the legacy partition holds rows up to %, within the retention window of % months: only rows before % may go',
            to_char(bound - interval '1 day', 'YYYY-MM'), keep_months, to_char(cutoff, 'YYYY-MM') USING ERRCODE = 'insufficient_privilege';
        END IF;
        last_day := (bound - interval '1 day')::date;
        -- No row may join the partition, nor be erased, between the checks and the drop.
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', part);
        EXECUTE format('SELECT seq, prev_hash, last_tx, last_id, row_count, retention_month, retention_rows, manifest, retention_erasures FROM %s ORDER BY seq DESC LIMIT 1', seals) INTO cp;
        IF cp.seq IS NULL OR cp.retention_month IS DISTINCT FROM last_day OR cp.row_count <> 0 THEN
          RAISE EXCEPTION 'the newest row of audit_seal must be the retention checkpoint of the legacy partition (rows before %)', to_char(bound, 'YYYY-MM')
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        EXECUTE format('SELECT hash, last_tx, last_id FROM %s WHERE seq = $1', seals) INTO prev USING cp.seq - 1;
        IF prev.hash IS NULL OR prev.hash <> cp.prev_hash OR prev.last_tx IS DISTINCT FROM cp.last_tx OR prev.last_id <> cp.last_id THEN
          RAISE EXCEPTION 'the retention checkpoint % does not continue seal %', cp.seq, cp.seq - 1 USING ERRCODE = 'insufficient_privilege';
        END IF;
        -- One read of the partition: each row matched to the manifest entry of its id and leaf prefix in
        -- the seal whose range holds it (lifecycle/month-check-sql.ts), as a month's removal does.
        EXECUTE format($sql$${CHECK_SQL}$sql$, part, seals) INTO k;
        EXECUTE replace($sql$${ERASURES_SQL}$sql$, '@part@', part::text) INTO held;
        IF k.unsealed > 0 THEN
          RAISE EXCEPTION 'the legacy partition holds rows not sealed yet' USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF k.left_out > 0 THEN
          RAISE EXCEPTION 'the legacy partition holds % rows that no seal sealed (forged or invalid: see audit-verify)', k.left_out
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF k.n IS DISTINCT FROM cp.retention_rows THEN
          RAISE EXCEPTION 'the retention checkpoint counts % rows, the legacy partition holds %', cp.retention_rows, k.n USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF k.marked <> cp.manifest THEN
          RAISE EXCEPTION 'the retention checkpoint''s manifest does not mark exactly the rows of the legacy partition' USING ERRCODE = 'insufficient_privilege';
        END IF;
        BEGIN
          carried := cp.retention_erasures::jsonb;
        EXCEPTION WHEN others THEN
          carried := NULL;
        END;
        IF carried IS DISTINCT FROM held THEN
          RAISE EXCEPTION 'the retention checkpoint does not carry forward the erasures of the legacy partition: it holds %', held
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', parent, part);
        EXECUTE format('DROP TABLE %s', part);
        RETURN k.n;
      END
      $fn$`);
    await queryRunner.query(`REVOKE ALL ON FUNCTION ${s}.audit_log_retire_legacy(integer) FROM PUBLIC`);
    await queryRunner.query(checkpointTriggerSql(schema, true));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    await queryRunner.query(checkpointTriggerSql(schema, false));
    await queryRunner.query(`DROP FUNCTION IF EXISTS ${ident(schema)}.audit_log_retire_legacy(integer)`);
  }
}

/**
 * `audit_seal_checkpoint_applied()`, the function of the triggers `AuditRetentionChecks1765300000000`
 * put on `audit_seal`: a checkpoint may be written only while the partition it removes is attached,
 * and committed only once it is gone. With `legacy`, a checkpoint whose `retention_month` is not a
 * first day is the legacy partition's: the partition `FROM (MINVALUE) TO` the next day; without
 * it, the function as that migration made it.
 */
function checkpointTriggerSql(schema: string, legacy: boolean): string {
  const s = ident(schema);
  const parent = `'${`${s}.audit_log`.replaceAll("'", "''")}'::regclass`;
  const legacyBranch = `
        IF NEW.retention_month <> date_trunc('month', NEW.retention_month)::date THEN
          SELECT EXISTS (SELECT FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
            WHERE h.inhparent = ${parent}
              AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES FROM (MINVALUE) TO (%L)', (NEW.retention_month + 1)::timestamptz)) INTO attached;
          IF TG_WHEN = 'BEFORE' AND NOT attached THEN
            RAISE EXCEPTION 'no legacy partition of audit_log ends at %: a retention checkpoint records the removal of one', to_char(NEW.retention_month + 1, 'YYYY-MM-DD')
              USING ERRCODE = 'insufficient_privilege';
          END IF;
          IF TG_WHEN = 'AFTER' AND attached THEN
            RAISE EXCEPTION 'the retention checkpoint of the legacy partition was committed, the partition still attached: only audit_log_retire_legacy removes it'
              USING ERRCODE = 'insufficient_privilege';
          END IF;
          RETURN NEW;
        END IF;`;
  return `
      CREATE OR REPLACE FUNCTION ${s}.audit_seal_checkpoint_applied() RETURNS trigger
      LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD'
      AS $fn$
      DECLARE
        m timestamptz := NEW.retention_month::timestamptz;
        attached boolean;
      BEGIN${legacy ? legacyBranch : ''}
        SELECT EXISTS (SELECT FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
          WHERE h.inhparent = ${parent}
            AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES FROM (%L) TO (%L)', m, m + interval '1 month')) INTO attached;
        IF TG_WHEN = 'BEFORE' AND NOT attached THEN
          RAISE EXCEPTION 'no partition of audit_log holds exactly the month %: a retention checkpoint records the removal of one', to_char(m, 'YYYY-MM')
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF TG_WHEN = 'AFTER' AND attached THEN
          RAISE EXCEPTION 'the retention checkpoint of month % was committed, its partition still attached: only audit_log_retire_month removes a month', to_char(m, 'YYYY-MM')
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
      END
      $fn$`;
}
