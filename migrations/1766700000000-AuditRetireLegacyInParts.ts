import { type MigrationInterface, type QueryRunner } from 'typeorm';
import { partsCheckPlpgsql } from '../src/audit/lifecycle/parts-plpgsql';
import { AuditRetireLegacy1766500000000 } from './1766500000000-AuditRetireLegacy';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** The settings every function here pins (as `audit_log_retire_month` pins them). */
const SETTINGS = `SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET lock_timeout = '1ms' SET work_mem = '64MB' SET enable_nestloop = off SET enable_mergejoin = off`;

/** Finds the legacy partition (`part`) and its bound (`bound_at`), in a function whose `parent` is `audit_log`. */
const FIND_LEGACY = `
        SELECT c.oid, (regexp_match(pg_get_expr(c.relpartbound, c.oid), '^FOR VALUES FROM \\(MINVALUE\\) TO \\(''([^'']+)''\\)$'))[1]::timestamptz
          INTO part, bound_at
          FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
          WHERE h.inhparent = parent AND pg_get_expr(c.relpartbound, c.oid) LIKE 'FOR VALUES FROM (MINVALUE) TO (%';`;

/** The legacy partition bounded at `bound` (a date), locked against inserts (SHARE): the check then sees every row it holds until the transaction ends. */
const LEGACY_PARTITION = `${FIND_LEGACY}
        IF part IS NULL OR bound IS NULL OR bound_at IS DISTINCT FROM bound::timestamptz THEN
          RAISE EXCEPTION 'no legacy partition of audit_log ends at %', bound USING ERRCODE = 'undefined_table';
        END IF;
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', part);`;

/**
 * The legacy partition (`FROM (MINVALUE) TO (<bound>)`, every row from before the partitions: a
 * whole history, millions of rows) is checked in parts, as a month is since
 * `AuditRetireInChunks1766300000000` (docs/LIFECYCLE.md, "The legacy partition"): one statement over
 * it ran past retention's statement timeout, and held the partition's SHARE lock (every insert
 * dated before the bound waits) for the whole read.
 *
 * - `audit_log_check_legacy_chunk(bound, after_tx, after_id, upto_tx, upto_id)` and
 *   `audit_log_check_legacy(bound)` are the month's two functions for the legacy partition bounded
 *   at `bound` (the first of the month its range ends before): the first locks it (SHARE) and
 *   checks one part of the sealing order, the second adds the parts up, reading no row, when they
 *   hold every row once and nothing changed since (otherwise it reads the partition whole), and
 *   keeps the result for the transaction (`audit_month_chunk`, `audit_month_check`).
 * - `audit_log_retire_legacy(keep_months)` is replaced (same signature, owner and grants): with the
 *   partition locked it takes that result as it is while the partition is as it was checked, as
 *   `audit_log_retire_month` does, and otherwise reads it whole, as before. Its checks are unchanged.
 *
 * Both checks are `SECURITY DEFINER`, EXECUTE revoked from PUBLIC and granted to every role granted
 * EXECUTE on `audit_log_retire_legacy` (none, unless granted by hand). Run again, the migration
 * makes the same.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditRetireLegacyInParts1766700000000 implements MigrationInterface {
  name = 'AuditRetireLegacyInParts1766700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    const lit = (text: string) => `'${text.replaceAll("'", "''")}'`;
    const parts = partsCheckPlpgsql(`'the legacy partition'`);
    const declare = `
        parent regclass := ${lit(`${s}.audit_log`)}::regclass;
        seals regclass := ${lit(`${s}.audit_seal`)}::regclass;
        chunks regclass := ${lit(`${s}.audit_month_chunk`)}::regclass;
        checks regclass := ${lit(`${s}.audit_month_check`)}::regclass;
        part regclass;
        bound_at timestamptz;
        k record;
        held jsonb;
        newest bigint;`;
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_check_legacy_chunk(bound date, after_tx bigint, after_id uuid, upto_tx bigint, upto_id uuid)
      RETURNS bigint
      LANGUAGE plpgsql SECURITY DEFINER ${SETTINGS}
      AS $fn$
      DECLARE ${declare}
        tail record;
        ${parts.chunkDeclare}
      BEGIN
        ${parts.chunkArguments}
        ${LEGACY_PARTITION}
        ${parts.chunkBody}
      END
      $fn$`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_check_legacy(bound date)
      RETURNS TABLE (n bigint, unsealed bigint, left_out bigint, marked bytea, covered bigint, erasures text)
      LANGUAGE plpgsql SECURITY DEFINER ${SETTINGS}
      AS $fn$
      DECLARE ${declare}
        summed record;
      BEGIN
        ${LEGACY_PARTITION}
        ${parts.addUp}
      END
      $fn$`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_retire_legacy(keep_months integer)
      RETURNS bigint
      LANGUAGE plpgsql SECURITY DEFINER ${SETTINGS}
      AS $fn$
      DECLARE ${declare}
        cutoff timestamptz;
        cp record;
        prev record;
        chk record;
        carried jsonb;
      BEGIN
        IF keep_months IS NULL OR keep_months < 1 OR keep_months > 1200 THEN
          RAISE EXCEPTION 'keep_months must be 1 to 1200, not %', keep_months USING ERRCODE = 'invalid_parameter_value';
        END IF;
        ${FIND_LEGACY}
        IF part IS NULL OR bound_at IS NULL THEN
          RAISE EXCEPTION 'audit_log has no legacy partition (FROM (MINVALUE) TO a time)' USING ERRCODE = 'undefined_table';
        END IF;
        IF bound_at <> date_trunc('month', bound_at) THEN
          RAISE EXCEPTION 'the legacy partition ends at %, not where a month begins', bound_at USING ERRCODE = 'invalid_parameter_value';
        END IF;
        cutoff := date_trunc('month', now()) - make_interval(months => keep_months);
        IF bound_at > cutoff THEN
          RAISE EXCEPTION 'the legacy partition holds rows up to %, within the retention window of % months: only rows before % may go',
            to_char(bound_at - interval '1 day', 'YYYY-MM'), keep_months, to_char(cutoff, 'YYYY-MM') USING ERRCODE = 'insufficient_privilege';
        END IF;
        -- No row may join the partition, nor be erased, between the checks and the drop.
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', part);
        EXECUTE format('SELECT seq, prev_hash, last_tx, last_id, row_count, retention_month, retention_rows, manifest, retention_erasures FROM %s ORDER BY seq DESC LIMIT 1', seals) INTO cp;
        IF cp.seq IS NULL OR cp.retention_month IS DISTINCT FROM (bound_at - interval '1 day')::date OR cp.row_count <> 0 THEN
          RAISE EXCEPTION 'the newest row of audit_seal must be the retention checkpoint of the legacy partition (rows before %)', to_char(bound_at, 'YYYY-MM')
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        EXECUTE format('SELECT hash, last_tx, last_id FROM %s WHERE seq = $1', seals) INTO prev USING cp.seq - 1;
        IF prev.hash IS NULL OR prev.hash <> cp.prev_hash OR prev.last_tx IS DISTINCT FROM cp.last_tx OR prev.last_id <> cp.last_id THEN
          RAISE EXCEPTION 'the retention checkpoint % does not continue seal %', cp.seq, cp.seq - 1 USING ERRCODE = 'insufficient_privilege';
        END IF;
        ${parts.recorded}
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
    for (const fn of ['audit_log_check_legacy_chunk(date, bigint, uuid, bigint, uuid)', 'audit_log_check_legacy(date)']) {
      await queryRunner.query(`REVOKE ALL ON FUNCTION ${s}.${fn} FROM PUBLIC`);
      // Whoever may remove the legacy partition may check it first, in parts (retention's code does).
      await queryRunner.query(`
        DO $$ DECLARE r record; BEGIN
          FOR r IN SELECT a.grantee::regrole::text AS role FROM pg_proc AS p, aclexplode(p.proacl) AS a
            WHERE p.oid = ${lit(`${s}.audit_log_retire_legacy(integer)`)}::regprocedure AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 LOOP
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s.${fn} TO %s', ${lit(s)}, r.role);
          END LOOP;
        END $$`);
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    await queryRunner.query(`DROP FUNCTION IF EXISTS ${s}.audit_log_check_legacy_chunk(date, bigint, uuid, bigint, uuid)`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS ${s}.audit_log_check_legacy(date)`);
    await new AuditRetireLegacy1766500000000().up(queryRunner);
  }
}
