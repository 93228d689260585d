import { type MigrationInterface, type QueryRunner } from 'typeorm';
import { monthCheckSql, monthChunkSql, monthErasuresSql } from '../src/audit/lifecycle/month-check-sql';
import { AuditRetireByLeaf1766100000000 } from './1766100000000-AuditRetireByLeaf';
import { FIRST_KEY, LAST_KEY, PART_ROWS } from '../src/audit/lifecycle/month-chunks';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** The month's whole check, as `format()` takes it: `%1$s` the partition, `%2$s` the seal table. */
const CHECK_SQL = monthCheckSql('%1$s', '%2$s');

/** The settings every function here pins (as `audit_log_retire_month` pins them). */
const SETTINGS = `SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET lock_timeout = '1ms' SET work_mem = '64MB' SET enable_nestloop = off SET enable_mergejoin = off`;

/**
 * A month too big to be checked in one statement within a statement timeout (a busy app's month of
 * millions of rows: 24 s for 1M rows under load, and the 30 s bound then failed it at every run) is
 * checked in parts, each a statement of its own, in the transaction that removes it
 * (docs/LIFECYCLE.md, "How a removal runs"):
 *
 * - `audit_log_check_month_chunk(month, after_tx, after_id, upto_tx, upto_id)` locks the month's
 *   partition (SHARE, as `audit_log_check_month`), checks the rows whose sealing key
 *   `(COALESCE(tx, -1), id)` lies after the first key and up to the second (NULL: from the first
 *   row, to the last) against the seals ({@link monthChunkSql}) with their erasures, and records the
 *   result for this transaction in `audit_month_chunk` (its owner's only). The parts must follow
 *   each other from the first key to the last without gap or overlap; a part from the first key
 *   begins again. Retention's code ends each part at a seal's last row, so that each seal's
 *   manifest is read by one part (the BRIN index on `tx` finds the part's rows). It answers the
 *   part's rows.
 * - `audit_log_check_month(month)` (same signature, owner and grants) takes the parts of this
 *   transaction, when they reach the partition's end and nothing changed since the first of them
 *   (same file, same newest seal, no row of the partition written, changed or deleted by this
 *   transaction), and adds them up without reading a row; otherwise it reads the month whole as
 *   before. It records its result for `audit_log_retire_month`, which is unchanged.
 *
 * The SHARE lock taken by the first part holds until the transaction ends, so every part sees the
 * month as the removal drops it, and the database trusts only what it checked itself.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditRetireInChunks1766300000000 implements MigrationInterface {
  name = 'AuditRetireInChunks1766300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    const lit = (text: string) => `'${text.replaceAll("'", "''")}'`;
    const monthPartition = `
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
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', part);`;
    const changes =
      'pg_stat_get_xact_tuples_inserted(part) + pg_stat_get_xact_tuples_updated(part) + pg_stat_get_xact_tuples_deleted(part)';
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS ${s}.audit_month_chunk (xact xid8 NOT NULL, part oid NOT NULL, after_tx bigint NOT NULL, after_id uuid NOT NULL,
        upto_tx bigint NOT NULL, upto_id uuid NOT NULL, filenode oid NOT NULL, newest bigint, n bigint NOT NULL, unsealed bigint NOT NULL,
        matched bigint NOT NULL, seqs bigint[] NOT NULL, maps bytea[] NOT NULL, covered bigint, held jsonb NOT NULL, changes bigint NOT NULL,
        PRIMARY KEY (xact, part, after_tx, after_id))`);
    await queryRunner.query(`REVOKE ALL ON ${s}.audit_month_chunk FROM PUBLIC`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_check_month_chunk(month date, after_tx bigint, after_id uuid, upto_tx bigint, upto_id uuid)
      RETURNS bigint
      LANGUAGE plpgsql SECURITY DEFINER ${SETTINGS}
      AS $fn$
      DECLARE
        parent regclass := ${lit(`${s}.audit_log`)}::regclass;
        seals regclass := ${lit(`${s}.audit_seal`)}::regclass;
        chunks regclass := ${lit(`${s}.audit_month_chunk`)}::regclass;
        m timestamptz;
        part regclass;
        k record;
        tail record;
        held jsonb;
        newest bigint;
        lo_t bigint := COALESCE(after_tx, ${FIRST_KEY[0]});
        lo_i uuid := COALESCE(after_id, ${lit(FIRST_KEY[1])}::uuid);
        hi_t bigint := COALESCE(upto_tx, ${LAST_KEY[0]});
        hi_i uuid := COALESCE(upto_id, ${lit(LAST_KEY[1])}::uuid);
      BEGIN
        IF (after_tx IS NULL) <> (after_id IS NULL) OR (upto_tx IS NULL) <> (upto_id IS NULL) OR lo_t < -2 OR hi_t < -1 OR (hi_t, hi_i) <= (lo_t, lo_i) THEN
          RAISE EXCEPTION 'keys (%, %) to (%, %) bound no part of a month', after_tx, after_id, upto_tx, upto_id USING ERRCODE = 'invalid_parameter_value';
        END IF;
        ${monthPartition}
        IF after_tx IS NULL THEN
          EXECUTE format('DELETE FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1', chunks) USING part;
        ELSE
          -- Each part begins where the one before ended: the parts tile the sealing order, no row in two of them, none in none.
          EXECUTE format('SELECT c.upto_tx, c.upto_id FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1
              ORDER BY c.upto_tx DESC, c.upto_id DESC LIMIT 1', chunks) INTO tail USING part;
          IF tail.upto_tx IS NULL OR (tail.upto_tx, tail.upto_id) <> (lo_t, lo_i) OR (lo_t, lo_i) = (${LAST_KEY[0]}, ${lit(LAST_KEY[1])}::uuid) THEN
            RAISE EXCEPTION 'the parts of month % follow each other from the first key: (%, %) is not where the last one ended', to_char(m, 'YYYY-MM'), after_tx, after_id
              USING ERRCODE = 'invalid_parameter_value';
          END IF;
        END IF;
        EXECUTE format('SELECT max(seq) FROM %s', seals) INTO newest;
        EXECUTE format($sql$${monthChunkSql('%1$s', '%2$s', PART_ROWS)}$sql$, part, seals) INTO k USING lo_t, lo_i, hi_t, hi_i;
        EXECUTE format($sql$${monthErasuresSql('%1$s', PART_ROWS)}$sql$, part) INTO held USING lo_t, lo_i, hi_t, hi_i;
        EXECUTE format('INSERT INTO %s (xact, part, after_tx, after_id, upto_tx, upto_id, filenode, newest, n, unsealed, matched, seqs, maps, covered, held, changes)
            VALUES (pg_current_xact_id(), $1, $2, $3, $4, $5, pg_relation_filenode($1), $6, $7, $8, $9, $10, $11, $12, $13, ${changes.replaceAll('(part)', '($1)')})', chunks)
          USING part, lo_t, lo_i, hi_t, hi_i, newest, k.n, k.unsealed, k.matched, k.seqs, k.maps, k.covered, held;
        RETURN k.n;
      END
      $fn$`);
    await queryRunner.query(`REVOKE ALL ON FUNCTION ${s}.audit_log_check_month_chunk(date, bigint, uuid, bigint, uuid) FROM PUBLIC`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_check_month(month date)
      RETURNS TABLE (n bigint, unsealed bigint, left_out bigint, marked bytea, covered bigint, erasures text)
      LANGUAGE plpgsql SECURITY DEFINER ${SETTINGS}
      AS $fn$
      DECLARE
        parent regclass := ${lit(`${s}.audit_log`)}::regclass;
        seals regclass := ${lit(`${s}.audit_seal`)}::regclass;
        checks regclass := ${lit(`${s}.audit_month_check`)}::regclass;
        chunks regclass := ${lit(`${s}.audit_month_chunk`)}::regclass;
        m timestamptz;
        part regclass;
        k record;
        parts record;
        held jsonb;
        newest bigint;
      BEGIN
        ${monthPartition}
        EXECUTE format('SELECT max(seq) FROM %s', seals) INTO newest;
        -- The parts this transaction checked, when they reach the partition's end and the month is as they saw it.
        EXECUTE format('SELECT pg_catalog.bool_or((c.upto_tx, c.upto_id) = (${LAST_KEY[0]}, ''${LAST_KEY[1]}''::uuid)) AS ended,
              pg_catalog.bool_and(c.filenode = pg_relation_filenode($1) AND c.newest IS NOT DISTINCT FROM $2 AND c.changes = ${changes.replaceAll('(part)', '($1)')}) AS same,
              pg_catalog.sum(c.n) AS n, pg_catalog.sum(c.unsealed) AS unsealed, pg_catalog.sum(c.matched) AS matched, pg_catalog.max(c.covered) AS covered
            FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1', chunks) INTO parts USING part, newest;
        IF parts.ended AND parts.same AND current_setting('transaction_isolation') = 'read committed' THEN
          -- Per seal, the bitmaps of the parts OR-ed: a row of each entry matched, in whichever part.
          EXECUTE format($sql$
            WITH u AS (SELECT x.seq, x.map FROM %s AS c, ROWS FROM (pg_catalog.unnest(c.seqs), pg_catalog.unnest(c.maps)) AS x(seq, map)
                       WHERE c.xact = pg_current_xact_id() AND c.part = $1),
            p AS (SELECT u.seq, pg_catalog.length(pg_catalog.min(u.map)) AS len,
                    pg_catalog.substr(pg_catalog.varbit_send(pg_catalog.bit_or(('x' || pg_catalog.encode(u.map, 'hex'))::varbit)), 5) AS bitmap
                  FROM u GROUP BY u.seq)
            SELECT COALESCE(pg_catalog.string_agg(pg_catalog.int8send(p.seq) || pg_catalog.int4send(p.len) || p.bitmap, ''::bytea ORDER BY p.seq), ''::bytea) AS marked,
              COALESCE(pg_catalog.sum(pg_catalog.bit_count(p.bitmap)), 0) AS entries
            FROM p$sql$, chunks) INTO k USING part;
          EXECUTE format($sql$
            WITH c AS (SELECT c.held FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1)
            SELECT pg_catalog.jsonb_build_object(
              'erased', COALESCE((SELECT pg_catalog.jsonb_object_agg(x.key, x.n) FROM (
                  SELECT e.key, pg_catalog.sum(e.value::bigint) AS n FROM c, pg_catalog.jsonb_each_text(c.held -> 'erased') AS e GROUP BY 1) AS x), '{}'::jsonb),
              'entries', COALESCE((SELECT pg_catalog.jsonb_object_agg(y.key, pg_catalog.jsonb_build_object('rows', y.n, 'subject', y.subject)) FROM (
                  SELECT e.key, pg_catalog.sum((e.value ->> 'rows')::bigint) AS n, pg_catalog.min(e.value ->> 'subject') AS subject
                  FROM c, pg_catalog.jsonb_each(c.held -> 'entries') AS e GROUP BY 1) AS y), '{}'::jsonb))$sql$, chunks) INTO held USING part;
          n := parts.n;
          unsealed := parts.unsealed;
          left_out := parts.n - parts.unsealed - LEAST(parts.matched, k.entries);
          marked := k.marked;
          covered := parts.covered;
        ELSE
          EXECUTE format($sql$${CHECK_SQL}$sql$, part, seals) INTO k;
          EXECUTE format($sql$${monthErasuresSql('%1$s', 'true')}$sql$, part) INTO held;
          n := k.n;
          unsealed := k.unsealed;
          left_out := k.left_out;
          marked := k.marked;
          covered := k.covered;
        END IF;
        EXECUTE format('DELETE FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1', chunks) USING part;
        EXECUTE format('DELETE FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1', checks) USING part;
        EXECUTE format('INSERT INTO %s (xact, part, filenode, newest, n, unsealed, left_out, marked, covered, held, changes)
            VALUES (pg_current_xact_id(), $1, pg_relation_filenode($1), $2, $3, $4, $5, $6, $7, $8, ${changes.replaceAll('(part)', '($1)')})', checks)
          USING part, newest, n, unsealed, left_out, marked, covered, held;
        erasures := held::text;
        RETURN NEXT;
      END
      $fn$`);
    // Whoever may check a month may check it in parts (retention's code does, so that no statement reads the month whole).
    await queryRunner.query(`
      DO $$ DECLARE r record; BEGIN
        FOR r IN SELECT a.grantee::regrole::text AS role FROM pg_proc AS p, aclexplode(p.proacl) AS a
          WHERE p.oid = ${lit(`${s}.audit_log_check_month(date)`)}::regprocedure AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 LOOP
          EXECUTE format('GRANT EXECUTE ON FUNCTION %s.audit_log_check_month_chunk(date, bigint, uuid, bigint, uuid) TO %s', ${lit(s)}, r.role);
        END LOOP;
      END $$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION IF EXISTS audit_log_check_month_chunk(date, bigint, uuid, bigint, uuid)`);
    await queryRunner.query(`DROP TABLE IF EXISTS audit_month_chunk`);
    await new AuditRetireByLeaf1766100000000().up(queryRunner);
  }
}
