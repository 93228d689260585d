import { type MigrationInterface, type QueryRunner } from 'typeorm';
import { erasuresSql } from '../src/audit/lifecycle/checkpoint-erasures';
import { AuditRetentionChecks1765300000000 } from './1765300000000-AuditRetentionChecks';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * Retention reads a month once (issue 21's measured target, see docs/LIFECYCLE.md and
 * docs/PERFORMANCE.md). Before, the retention code read every row of the month into Node to find
 * it in its seal's manifest, then `audit_log_retire_month` read the partition again to check the
 * same. Now the database does the matching once:
 *
 * - `audit_log_month_state(part, m)` (internal, EXECUTE revoked from PUBLIC): one pass over the
 *   partition, each row matched to the manifest entry of the seal whose range holds it, by its id
 *   (no leaf hashed): the rows, those after the newest seal, those no seal sealed, the
 *   checkpoint's manifest, the newest seal that sealed one, and the erasures the month holds. A
 *   row whose key (tx, id) is also in another partition (a copy of a sealed row, or the row
 *   copied) counts as one no seal sealed: found through the BRIN index on tx, among the other
 *   partitions' rows in the month's sealed tx range only.
 * - `audit_log_month_check(month date)` (SECURITY DEFINER, callable by a session whose login role
 *   may execute `audit_log_retire_month`: no new grant): locks the month's partition (SHARE),
 *   returns its state and keeps it in `audit_retire_check` (no right for PUBLIC) for this
 *   transaction.
 * - `audit_log_retire_month(month, keep_months)` replaced (same signature, owner, settings, grant):
 *   it checks what it checked before, on the state kept in this transaction when the partition has
 *   not changed since (held SHARE, no insert, update or delete by this transaction: its counters)
 *   and no seal came but the checkpoint; otherwise it computes the state itself. It now refuses a
 *   month holding a copy of a sealed row of another month, which it took for the row before.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditRetentionOnePass1765700000000 implements MigrationInterface {
  name = 'AuditRetentionOnePass1765700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    const lit = (text: string) => `'${text.replaceAll("'", "''")}'`;
    const settings = `SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET work_mem = '64MB' SET enable_nestloop = off`;
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS ${s}.audit_retire_check (
        xact xid8 NOT NULL, part_oid oid NOT NULL, base_seq bigint NOT NULL, tuple_changes bigint NOT NULL,
        row_count bigint NOT NULL, unsealed_rows bigint NOT NULL, left_out_rows bigint NOT NULL, marked_bytes bytea NOT NULL,
        held_erasures jsonb NOT NULL, PRIMARY KEY (xact, part_oid))`);
    await queryRunner.query(`REVOKE ALL ON ${s}.audit_retire_check FROM PUBLIC`);
    // The state of one partition against the seals, in one read of it (`%1$s` the partition, `%2$s` the seals).
    const stateSql = `
      WITH r AS MATERIALIZED (SELECT l.ctid AS at, COALESCE(l.tx, -1) AS t, l.id,
              CASE WHEN l.personal LIKE '{"erased":%%' THEN l.personal END AS personal,
              CASE WHEN l.action OPERATOR(pg_catalog.=) 'audit_erasure' THEN l.action END AS action,
              CASE WHEN l.action OPERATOR(pg_catalog.=) 'audit_erasure' THEN l.changes END AS changes
            FROM %1$s AS l),
      rs AS (SELECT r.at, r.t, r.id FROM r WHERE $1::bigint IS NOT NULL AND (r.t, r.id) <= ($1, $2)),
      lo AS (SELECT rs.t, rs.id FROM rs ORDER BY rs.t, rs.id LIMIT 1),
      hi AS (SELECT rs.t, rs.id FROM rs ORDER BY rs.t DESC, rs.id DESC LIMIT 1),
      s AS (SELECT x.seq, COALESCE(x.last_tx, -1) AS lt, x.last_id AS li, x.manifest, x.hash,
              lag(COALESCE(x.last_tx, -1)) OVER w AS pt, lag(x.last_id) OVER w AS pi
            FROM %2$s AS x WHERE x.retention_month IS NULL WINDOW w AS (ORDER BY x.seq)),
      c AS MATERIALIZED (SELECT s.seq, s.lt, s.li, s.pt, s.pi, s.hash, s.manifest || ''::bytea AS manifest FROM s, lo, hi WHERE (s.lt, s.li) >= (lo.t, lo.id)
              AND s.seq <= (SELECT min(s2.seq) FROM s AS s2 WHERE (s2.lt, s2.li) >= (hi.t, hi.id))),
      e AS MATERIALIZED (SELECT c.seq, i, substring(c.manifest FROM i * 24 + 1 FOR 16) AS b, c.lt, c.li, c.pt, c.pi
            FROM c, generate_series(0, length(c.manifest) / 24 - 1) AS i),
      f AS MATERIALIZED (SELECT rs.at, e.seq, e.i FROM rs JOIN e ON e.b = uuid_send(rs.id)
              AND (rs.t, rs.id) <= (e.lt, e.li) AND (e.pt IS NULL OR (rs.t, rs.id) > (e.pt, e.pi))),
      bits AS (SELECT g.seq, g.i / 8 AS at, bit_or(128 >> (g.i %% 8)) AS v FROM f AS g GROUP BY 1, 2),
      bytes AS (SELECT c.seq, ((length(c.manifest) + 191) / 192)::integer AS len, k.at
                FROM c, generate_series(0, (length(c.manifest) + 191) / 192 - 1) AS k(at)
                WHERE c.seq IN (SELECT DISTINCT g.seq FROM f AS g)),
      maps AS (SELECT y.seq, y.len, decode(string_agg(lpad(to_hex(COALESCE(b.v, 0)), 2, '0'), '' ORDER BY y.at), 'hex') AS bitmap
               FROM bytes AS y LEFT JOIN bits AS b ON b.seq = y.seq AND b.at = y.at GROUP BY y.seq, y.len),
      counts AS (SELECT (SELECT count(*) FROM r) AS n, (SELECT count(*) FROM rs) AS sealed)
      SELECT counts.n, counts.n - counts.sealed,
        -- A sealed-range row with no entry, or two rows on one entry (an id copied), is a row no seal sealed.
        counts.sealed - LEAST((SELECT count(*) FROM (SELECT g.at FROM f AS g GROUP BY g.at) AS d),
          (SELECT count(*) FROM (SELECT g.seq, g.i FROM f AS g GROUP BY g.seq, g.i) AS d)),
        (SELECT COALESCE(string_agg(int8send(p.seq) || int4send(p.len) || p.bitmap, ''::bytea ORDER BY p.seq), ''::bytea) FROM maps AS p),
        ${erasuresSql('r AS l WHERE true').replaceAll('%', '%%')},
        (SELECT max(g.seq) FROM f AS g),
        (SELECT c.hash FROM c WHERE c.seq = (SELECT max(g.seq) FROM f AS g)),
        (SELECT lo.t FROM lo), (SELECT hi.t FROM hi)
      FROM counts`;
    // Rows of the other partitions with the key (tx, id) of a sealed row of this one, among those whose
    // tx lies in its sealed range (the BRIN index on tx): a copy, or the row it copies. The manifest
    // cannot tell which of the two its seal sealed, so the month is refused (each counts as left out).
    const candidatesSql = `
      SELECT array_agg(o.id), array_agg(COALESCE(o.tx, -1)) FROM %1$s AS o
      WHERE (o.occurred_at < $3 OR o.occurred_at >= $4) AND ((o.tx >= $1 AND o.tx <= $2) OR ($1 < 0 AND o.tx IS NULL))`;
    const copiesSql = `
      SELECT count(*) FROM %1$s AS l WHERE (l.id, COALESCE(l.tx, -1)) IN (SELECT k.id, k.t FROM unnest($1::uuid[], $2::bigint[]) AS k(id, t))`;
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_month_state(part regclass, m timestamptz, OUT rows bigint, OUT unsealed bigint, OUT left_out bigint,
        OUT marked bytea, OUT held jsonb, OUT newest bigint, OUT covered bigint, OUT covered_hash bytea)
      LANGUAGE plpgsql ${settings} SET enable_seqscan = on
      AS $fn$
      DECLARE
        parent regclass := ${lit(`${s}.audit_log`)}::regclass;
        seals regclass := ${lit(`${s}.audit_seal`)}::regclass;
        nt bigint;
        ni uuid;
        lo bigint;
        hi bigint;
        copies bigint;
        ids uuid[];
        txs bigint[];
      BEGIN
        EXECUTE format('SELECT seq, COALESCE(last_tx, -1), last_id FROM %s ORDER BY seq DESC LIMIT 1', seals) INTO newest, nt, ni;
        EXECUTE format($sql$${stateSql}$sql$, part, seals) INTO rows, unsealed, left_out, marked, held, covered, covered_hash, lo, hi USING nt, ni;
        IF lo IS NOT NULL THEN
          -- The BRIN index, not a read of every other partition (restored when the function returns);
          -- then, only if some row of another month lies in the range, a read of this one.
          PERFORM set_config('enable_seqscan', 'off', true);
          EXECUTE format($sql$${candidatesSql}$sql$, parent) INTO ids, txs USING lo, hi, m, m + interval '1 month';
          PERFORM set_config('enable_seqscan', 'on', true);
          copies := 0;
          IF ids IS NOT NULL THEN
            EXECUTE format($sql$${copiesSql}$sql$, part) INTO copies USING ids, txs;
          END IF;
          left_out := left_out + copies;
        END IF;
      END
      $fn$`);
    await queryRunner.query(`REVOKE ALL ON FUNCTION ${s}.audit_log_month_state(regclass, timestamptz) FROM PUBLIC`);
    const findPartition = `
        SELECT c.oid INTO part FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
          WHERE h.inhparent = parent AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES FROM (%L) TO (%L)', m, m + interval '1 month');
        IF part IS NULL THEN
          RAISE EXCEPTION 'no partition of audit_log holds exactly the month %', to_char(m, 'YYYY-MM') USING ERRCODE = 'undefined_table';
        END IF;
        -- No row may join the month, nor be erased, between the checks and the drop.
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', part);`;
    // What this transaction changed in the partition: the state kept is stale once it moves.
    const changes = `(pg_stat_get_xact_tuples_inserted(part) + pg_stat_get_xact_tuples_updated(part) + pg_stat_get_xact_tuples_deleted(part))`;
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_month_check(month date)
      RETURNS TABLE (rows bigint, unsealed bigint, left_out bigint, manifest bytea, erasures text, newest bigint, covered bigint, covered_hash bytea)
      LANGUAGE plpgsql SECURITY DEFINER ${settings} SET lock_timeout = '5s'
      AS $fn$
      DECLARE
        parent regclass := ${lit(`${s}.audit_log`)}::regclass;
        m timestamptz;
        part regclass;
        st record;
      BEGIN
        IF NOT has_function_privilege(session_user, ${lit(`${s}.audit_log_retire_month(date, integer)`)}, 'EXECUTE') THEN
          RAISE EXCEPTION 'audit_log_month_check is for a role that may run audit_log_retire_month' USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF month IS NULL OR month <> date_trunc('month', month)::date THEN
          RAISE EXCEPTION 'month must be the first day of a month, not %', month USING ERRCODE = 'invalid_parameter_value';
        END IF;
        m := month::timestamptz;
        ${findPartition}
        SELECT * INTO st FROM ${s}.audit_log_month_state(part, m);
        IF current_setting('track_counts')::boolean AND st.newest IS NOT NULL THEN
          INSERT INTO ${s}.audit_retire_check AS k (xact, part_oid, base_seq, tuple_changes, row_count, unsealed_rows, left_out_rows, marked_bytes, held_erasures)
            VALUES (pg_current_xact_id(), part, st.newest, ${changes}, st.rows, st.unsealed, st.left_out, st.marked, st.held)
            ON CONFLICT (xact, part_oid) DO UPDATE SET base_seq = EXCLUDED.base_seq, tuple_changes = EXCLUDED.tuple_changes,
              row_count = EXCLUDED.row_count, unsealed_rows = EXCLUDED.unsealed_rows, left_out_rows = EXCLUDED.left_out_rows,
              marked_bytes = EXCLUDED.marked_bytes, held_erasures = EXCLUDED.held_erasures;
        END IF;
        RETURN QUERY SELECT st.rows, st.unsealed, st.left_out, st.marked, st.held::text, st.newest, st.covered, st.covered_hash;
      END
      $fn$`);
    await queryRunner.query(`REVOKE ALL ON FUNCTION ${s}.audit_log_month_check(date) FROM PUBLIC`);
    await queryRunner.query(`GRANT EXECUTE ON FUNCTION ${s}.audit_log_month_check(date) TO PUBLIC`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_retire_month(month date, keep_months integer)
      RETURNS bigint
      LANGUAGE plpgsql SECURITY DEFINER ${settings} SET lock_timeout = '5s'
      AS $fn$
      DECLARE
        parent regclass := ${lit(`${s}.audit_log`)}::regclass;
        seals regclass := ${lit(`${s}.audit_seal`)}::regclass;
        m timestamptz;
        cutoff timestamptz;
        part regclass;
        cp record;
        prev record;
        st record;
        carried jsonb;
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
        ${findPartition}
        EXECUTE format('SELECT seq, prev_hash, last_tx, last_id, retention_month, retention_rows, manifest, retention_erasures FROM %s ORDER BY seq DESC LIMIT 1', seals) INTO cp;
        IF cp.seq IS NULL OR cp.retention_month IS DISTINCT FROM month THEN
          RAISE EXCEPTION 'the newest row of audit_seal must be the retention checkpoint of month %', to_char(m, 'YYYY-MM')
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        EXECUTE format('SELECT hash, last_tx, last_id FROM %s WHERE seq = $1', seals) INTO prev USING cp.seq - 1;
        IF prev.hash IS NULL OR prev.hash <> cp.prev_hash OR prev.last_tx IS DISTINCT FROM cp.last_tx OR prev.last_id <> cp.last_id THEN
          RAISE EXCEPTION 'the retention checkpoint % does not continue seal %', cp.seq, cp.seq - 1 USING ERRCODE = 'insufficient_privilege';
        END IF;
        -- The state audit_log_month_check kept in this transaction, if nothing it read has changed since.
        SELECT k.row_count AS rows, k.unsealed_rows AS unsealed, k.left_out_rows AS left_out, k.marked_bytes AS marked, k.held_erasures AS held
          INTO st FROM ${s}.audit_retire_check AS k
          WHERE k.xact = pg_current_xact_id() AND k.part_oid = part AND k.base_seq = cp.seq - 1 AND k.tuple_changes = ${changes}
            AND current_setting('track_counts')::boolean;
        IF NOT FOUND THEN
          SELECT x.rows, x.unsealed, x.left_out, x.marked, x.held INTO st FROM ${s}.audit_log_month_state(part, m) AS x;
        END IF;
        DELETE FROM ${s}.audit_retire_check AS k WHERE k.xact = pg_current_xact_id();
        IF st.unsealed > 0 THEN
          RAISE EXCEPTION 'month % holds rows not sealed yet', to_char(m, 'YYYY-MM') USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF st.left_out > 0 THEN
          RAISE EXCEPTION 'month % holds % rows that no seal sealed (forged or invalid: see audit-verify)', to_char(m, 'YYYY-MM'), st.left_out
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF st.rows IS DISTINCT FROM cp.retention_rows THEN
          RAISE EXCEPTION 'the retention checkpoint counts % rows, month % holds %', cp.retention_rows, to_char(m, 'YYYY-MM'), st.rows
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF st.marked <> cp.manifest THEN
          RAISE EXCEPTION 'the retention checkpoint''s manifest does not mark exactly the rows of month %', to_char(m, 'YYYY-MM')
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        BEGIN
          carried := cp.retention_erasures::jsonb;
        EXCEPTION WHEN others THEN
          carried := NULL;
        END;
        IF carried IS DISTINCT FROM st.held THEN
          RAISE EXCEPTION 'the retention checkpoint does not carry forward the erasures of month %: it holds %', to_char(m, 'YYYY-MM'), st.held
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', parent, part);
        EXECUTE format('DROP TABLE %s', part);
        RETURN st.rows;
      END
      $fn$`);
    await queryRunner.query(`REVOKE ALL ON FUNCTION ${s}.audit_log_retire_month(date, integer) FROM PUBLIC`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION IF EXISTS audit_log_month_check(date)`);
    // The function as the retention checks migration made it (grants on it are kept by CREATE OR REPLACE).
    await new AuditRetentionChecks1765300000000().up(queryRunner);
    await queryRunner.query(`DROP FUNCTION IF EXISTS audit_log_month_state(regclass, timestamptz)`);
    await queryRunner.query(`DROP TABLE IF EXISTS audit_retire_check`);
  }
}
