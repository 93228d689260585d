import { type MigrationInterface, type QueryRunner } from 'typeorm';
import { partsCheckPlpgsql } from '../src/audit/lifecycle/parts-plpgsql';
import { sealMonthsSql } from '../src/audit/lifecycle/seal-months-sql';
import { AuditRetireInChunks1766300000000 } from './1766300000000-AuditRetireInChunks';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** The settings the month's check pins (as `audit_log_retire_month` pins them); `enable_seqscan` is set off for the probes only. */
const SETTINGS = `SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET lock_timeout = '1ms' SET work_mem = '64MB' SET enable_nestloop = off SET enable_mergejoin = off SET enable_seqscan = on`;

/** The settings of the seal's record, run at the commit of the sealer's transaction: no lock_timeout of its own (the sealer's applies). */
const RECORD_SETTINGS = `SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET work_mem = '64MB' SET enable_nestloop = off SET enable_mergejoin = off`;

/** The partial index of the erased rows, on `audit_log` (and on each partition: `<partition>_erased_idx`). */
const ERASED_INDEX = 'audit_log_erased_idx';

/** The index's key and predicate: the same on the parent and on every partition, as ATTACH requires. */
const ERASED_INDEX_BODY = `(id) WHERE personal LIKE '{"erased":%'`;

/**
 * Makes `audit_log_erased_idx` without a build under the parent's lock: `CREATE INDEX … ON ONLY`
 * (SHARE on the parent alone, no build), then each partition's `<partition>_erased_idx`, built
 * beforehand by the operator or here (`CONCURRENTLY` outside a transaction; inside one, plainly:
 * SHARE on that partition), attached with `ALTER INDEX … ATTACH PARTITION` (ACCESS SHARE on the
 * tables, SHARE UPDATE EXCLUSIVE on the parent's index, ACCESS EXCLUSIVE on the partition's).
 */
async function buildErasedIndex(queryRunner: QueryRunner, schema: string): Promise<void> {
  const s = ident(schema);
  const lit = (text: string) => `'${text.replaceAll("'", "''")}'`;
  const concurrently = !queryRunner.isTransactionActive;
  const [{ kind }] = (await queryRunner.query(
    `SELECT c.relkind AS kind FROM pg_class c WHERE c.oid = ${lit(`${s}.audit_log`)}::regclass`,
  )) as {
    kind: string;
  }[];
  if (kind !== 'p') {
    await queryRunner.query(
      `CREATE INDEX ${concurrently ? 'CONCURRENTLY ' : ''}IF NOT EXISTS ${ERASED_INDEX} ON ${s}.audit_log ${ERASED_INDEX_BODY}`,
    );
    return;
  }
  await queryRunner.query(`CREATE INDEX IF NOT EXISTS ${ERASED_INDEX} ON ONLY ${s}.audit_log ${ERASED_INDEX_BODY}`);
  const parts = (await queryRunner.query(`
    SELECT c.relname AS name,
      EXISTS (SELECT FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid
        WHERE i.inhparent = ${lit(`${s}.${ERASED_INDEX}`)}::regclass AND x.indrelid = c.oid) AS attached
    FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
    WHERE h.inhparent = ${lit(`${s}.audit_log`)}::regclass AND c.relkind = 'r'
    ORDER BY c.relname`)) as { name: string; attached: boolean }[];
  for (const part of parts) {
    if (part.attached) continue;
    const name = `${part.name.slice(0, 51)}_erased_idx`;
    const [own] = (await queryRunner.query(
      `SELECT x.indisvalid AS valid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
       WHERE i.relname = ${lit(name)} AND i.relnamespace = ${lit(schema)}::regnamespace`,
    )) as { valid: boolean }[];
    // An invalid one is what an interrupted CONCURRENTLY build leaves: built again.
    if (own && !own.valid) await queryRunner.query(`DROP INDEX ${concurrently ? 'CONCURRENTLY ' : ''}${s}.${ident(name)}`);
    if (!own || !own.valid) {
      await queryRunner.query(
        `CREATE INDEX ${concurrently ? 'CONCURRENTLY ' : ''}${ident(name)} ON ${s}.${ident(part.name)} ${ERASED_INDEX_BODY}`,
      );
    }
    await queryRunner.query(`ALTER INDEX ${s}.${ERASED_INDEX} ATTACH PARTITION ${s}.${ident(name)}`);
  }
}

/**
 * Retention in constant time (issue 21's `lifecycle.dropMonthMs`; docs/LIFECYCLE.md, "What a seal
 * records of its months"): a month's removal no longer reads its rows.
 *
 * - `audit_seal_month (seq, month, rows, left_out, bitmap)`: per seal and per month (UTC) of the
 *   rows in its range, the rows that are the row of a manifest entry, the rows it left out, and the
 *   bitmap over its manifest of that month's rows; `audit_seal_month_erasure (seq, month, erasure,
 *   rows, subject)`: the `audit_erasure` entries of its range; `audit_seal_recorded (seq)`: the
 *   seals so recorded. Owned by the migration's role, no rights for anyone else.
 * - A constraint trigger on `audit_seal` (`audit_seal_months`, deferred to the commit of the
 *   seal's transaction, `SECURITY DEFINER`) records each new seal: it reads the seal's range of
 *   rows (and the rest of its last transaction's: the rows of the month not sealed yet it leaves
 *   behind), matches them to the manifest by id and leaf prefix, and refuses a seal whose manifest
 *   names a row not there. Rows of the range the manifest leaves out (the sealer leaves out forged
 *   and invalid rows) are recorded as left out: they keep their month. It also refuses a seal
 *   whose last transaction, or a transaction below whose horizon, has not ended at that commit
 *   (`pg_snapshot_xmin`): a recorded range never gains a row afterwards.
 * - The seals already made are recorded here, one seal's range at a time.
 * - `audit_log_erased_idx`, a partial index of the erased rows, so that a month's erased rows are
 *   counted without reading the others (erasure changes rows after their seal). Made last, after
 *   the seals are recorded (that reading takes ACCESS SHARE only: inserts go on), `ON ONLY` the
 *   parent with each partition's index attached (`buildErasedIndex`): its locks, which inserts
 *   wait for, are held from there to the migration's commit only.
 * - `audit_log_check_month(month)` is replaced (same signature, owner and grants): when every seal
 *   is recorded it answers from the records of the seals after the month's last removal, plus one
 *   probe of the partition for rows of transactions after the newest seal's last (the BRIN index
 *   on `tx`), the rows that seal's record left after its last row, and
 *   the erased rows (the index above); otherwise as before (its parts, or the month read whole).
 *   `audit_log_month_recorded(month)` says which, so that retention's code skips the parts.
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditSealMonths1766800000000 implements MigrationInterface {
  name = 'AuditSealMonths1766800000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    const lit = (text: string) => `'${text.replaceAll("'", "''")}'`;
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS ${s}.audit_seal_month (seq bigint NOT NULL, month date NOT NULL, rows bigint NOT NULL, left_out bigint NOT NULL,
        tail bigint NOT NULL, bitmap bytea NOT NULL, PRIMARY KEY (seq, month))`);
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS audit_seal_month_month_idx ON ${s}.audit_seal_month (month, seq)`);
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS ${s}.audit_seal_month_erasure (seq bigint NOT NULL, month date NOT NULL, erasure text NOT NULL, rows bigint NOT NULL,
        subject text, PRIMARY KEY (seq, month, erasure))`);
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS audit_seal_month_erasure_month_idx ON ${s}.audit_seal_month_erasure (month, seq)`);
    await queryRunner.query(`CREATE TABLE IF NOT EXISTS ${s}.audit_seal_recorded (seq bigint PRIMARY KEY)`);
    for (const table of ['audit_seal_month', 'audit_seal_month_erasure', 'audit_seal_recorded']) {
      await queryRunner.query(`REVOKE ALL ON ${s}.${table} FROM PUBLIC`);
    }
    const record = sealMonthsSql(`${s}.audit_log`, `${s}.audit_seal_month`, `${s}.audit_seal_month_erasure`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_seal_record_months(seal bigint, refuse boolean)
      RETURNS void
      LANGUAGE plpgsql SECURITY DEFINER ${RECORD_SETTINGS}
      AS $fn$
      DECLARE
        x record;
        p record;
        k record;
        oldest bigint;
      BEGIN
        SELECT a.seq, a.last_tx, a.last_id, a.horizon, a.manifest || ''::bytea AS manifest, a.retention_month INTO x FROM ${s}.audit_seal AS a WHERE a.seq = seal;
        IF x.seq IS NULL OR x.retention_month IS NOT NULL THEN
          RETURN;
        END IF;
        -- Every transaction up to the seal's last and below its horizon must have ended (the sealer's horizon is its snapshot's xmin):
        -- a row can then never join its range, and the month's check may count only later transactions' rows as unsealed.
        oldest := pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint;
        IF refuse AND (COALESCE(x.last_tx, -1) >= oldest OR x.horizon > oldest) THEN
          RAISE EXCEPTION 'seal % ends at transaction % with horizon %, and transaction % has not ended: refused', seal, x.last_tx, x.horizon, oldest
            USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        SELECT a.last_tx, a.last_id INTO p FROM ${s}.audit_seal AS a WHERE a.seq < seal AND a.retention_month IS NULL ORDER BY a.seq DESC LIMIT 1;
        DELETE FROM ${s}.audit_seal_month AS a WHERE a.seq = seal;
        DELETE FROM ${s}.audit_seal_month_erasure AS a WHERE a.seq = seal;
        DELETE FROM ${s}.audit_seal_recorded AS a WHERE a.seq = seal;
        -- The seal's range of the sealing order: after the seal before it, up to its own last row.
        EXECUTE ${lit(record)} INTO k
          USING CASE WHEN p.last_id IS NULL THEN -2 ELSE COALESCE(p.last_tx, -1) END, COALESCE(p.last_id, '00000000-0000-0000-0000-000000000000'::uuid),
            COALESCE(x.last_tx, -1), x.last_id, x.manifest, seal;
        IF refuse AND k.found < k.listed THEN
          RAISE EXCEPTION 'seal % names % rows that are not in its range (% of % found): refused', seal, k.listed - k.found, k.found, k.listed
            USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        INSERT INTO ${s}.audit_seal_recorded (seq) VALUES (seal);
      END
      $fn$`);
    await queryRunner.query(`REVOKE ALL ON FUNCTION ${s}.audit_seal_record_months(bigint, boolean) FROM PUBLIC`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_seal_months() RETURNS trigger
      LANGUAGE plpgsql SECURITY DEFINER ${RECORD_SETTINGS}
      AS $fn$
      BEGIN
        PERFORM ${s}.audit_seal_record_months(NEW.seq, true);
        RETURN NULL;
      END
      $fn$`);
    await queryRunner.query(`REVOKE ALL ON FUNCTION ${s}.audit_seal_months() FROM PUBLIC`);
    await queryRunner.query(`DROP TRIGGER IF EXISTS audit_seal_months ON ${s}.audit_seal`);
    await queryRunner.query(`
      CREATE CONSTRAINT TRIGGER audit_seal_months AFTER INSERT ON ${s}.audit_seal DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW WHEN (NEW.retention_month IS NULL) EXECUTE FUNCTION ${s}.audit_seal_months()`);
    // The seals already made, one range at a time (rows of months already removed are gone: nothing is refused here).
    await queryRunner.query(`
      DO $$ DECLARE r record; BEGIN
        FOR r IN SELECT a.seq FROM ${s}.audit_seal AS a WHERE a.retention_month IS NULL
            AND NOT EXISTS (SELECT 1 FROM ${s}.audit_seal_recorded AS d WHERE d.seq = a.seq) ORDER BY a.seq LOOP
          PERFORM ${s}.audit_seal_record_months(r.seq, false);
        END LOOP;
      END $$`);
    const declare = `
        parent regclass := ${lit(`${s}.audit_log`)}::regclass;
        seals regclass := ${lit(`${s}.audit_seal`)}::regclass;
        chunks regclass := ${lit(`${s}.audit_month_chunk`)}::regclass;
        checks regclass := ${lit(`${s}.audit_month_check`)}::regclass;
        months regclass := ${lit(`${s}.audit_seal_month`)}::regclass;
        gone regclass := ${lit(`${s}.audit_seal_month_erasure`)}::regclass;
        marks regclass := ${lit(`${s}.audit_seal_recorded`)}::regclass;
        m timestamptz;
        part regclass;
        k record;
        held jsonb;
        newest bigint;`;
    const recordedSql = `format('SELECT pg_catalog.count(*) > 0 AND pg_catalog.bool_and(EXISTS (SELECT 1 FROM %s AS d WHERE d.seq = x.seq)) FROM %s AS x
          WHERE x.retention_month IS NULL', marks, seals)`;
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_month_recorded(month date)
      RETURNS boolean
      LANGUAGE plpgsql SECURITY DEFINER ${SETTINGS}
      AS $fn$
      DECLARE ${declare}
        whole boolean;
      BEGIN
        EXECUTE ${recordedSql} INTO whole;
        RETURN COALESCE(whole, false);
      END
      $fn$`);
    await queryRunner.query(`REVOKE ALL ON FUNCTION ${s}.audit_log_month_recorded(date) FROM PUBLIC`);
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
    const changes = 'pg_stat_get_xact_tuples_inserted($1) + pg_stat_get_xact_tuples_updated($1) + pg_stat_get_xact_tuples_deleted($1)';
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_check_month(month date)
      RETURNS TABLE (n bigint, unsealed bigint, left_out bigint, marked bytea, covered bigint, erasures text)
      LANGUAGE plpgsql SECURITY DEFINER ${SETTINGS}
      AS $fn$
      DECLARE ${declare}
        summed record;
        whole boolean;
        tip record;
        floor_seq bigint;
        tail_rows bigint;
        erased_rows jsonb;
        erasure_entries jsonb;
      BEGIN
        ${monthPartition}
        EXECUTE ${recordedSql} INTO whole;
        IF whole AND current_setting('transaction_isolation') = 'read committed' THEN
          EXECUTE format('SELECT max(seq) FROM %s', seals) INTO newest;
          EXECUTE format('SELECT x.seq, COALESCE(x.last_tx, -1) AS lt, x.last_id AS li FROM %s AS x WHERE x.retention_month IS NULL ORDER BY x.seq DESC LIMIT 1', seals) INTO tip;
          -- Seals up to the month's last removal (its checkpoint, or the legacy partition's that spanned it) sealed rows gone with it.
          EXECUTE format('SELECT COALESCE(pg_catalog.max(x.seq), 0) FROM %s AS x WHERE x.retention_month = $1
              OR (x.retention_month <> pg_catalog.date_trunc(''month'', x.retention_month)::date AND x.retention_month >= $1)', seals) INTO floor_seq USING month;
          EXECUTE format('SELECT COALESCE(pg_catalog.sum(r.rows), 0) AS sealed, COALESCE(pg_catalog.sum(r.left_out), 0) AS left_out,
                pg_catalog.max(r.seq) FILTER (WHERE r.rows > 0) AS covered,
                COALESCE(pg_catalog.string_agg(pg_catalog.int8send(r.seq) || pg_catalog.int4send(pg_catalog.length(r.bitmap)) || r.bitmap, ''''::bytea ORDER BY r.seq)
                  FILTER (WHERE r.rows > 0), ''''::bytea) AS marked
              FROM %s AS r WHERE r.month = $1 AND r.seq > $2', months) INTO k USING month, floor_seq;
          EXECUTE format('SELECT COALESCE(pg_catalog.jsonb_object_agg(y.erasure, pg_catalog.jsonb_build_object(''rows'', y.n, ''subject'', y.subject)), ''{}''::jsonb)
              FROM (SELECT g.erasure, pg_catalog.sum(g.rows) AS n, pg_catalog.min(g.subject) AS subject FROM %s AS g WHERE g.month = $1 AND g.seq > $2 GROUP BY 1) AS y',
            gone) INTO erasure_entries USING month, floor_seq;
          -- Two probes that read no row but those they count: rows after the newest seal's last row (the BRIN index
          -- on tx: a row gets its tx from the database, after every sealed range), and the erased rows (their index).
          PERFORM pg_catalog.set_config('enable_seqscan', 'off', true);
          IF tip.lt >= 0 THEN
            -- The rows of later transactions, plus those of the newest seal's own last transaction after its last row (counted at its commit:
            -- that transaction had ended, so no row joins them): the probe then skips the blocks of that transaction, a bulk load's too.
            EXECUTE format('SELECT pg_catalog.count(*) FROM %s AS l WHERE l.tx > $1', part) INTO unsealed USING tip.lt;
            EXECUTE format('SELECT COALESCE(pg_catalog.sum(r.tail), 0) FROM %s AS r WHERE r.seq = $1 AND r.month = $2', months) INTO tail_rows USING tip.seq, month;
            unsealed := unsealed + tail_rows;
          ELSE
            EXECUTE format('SELECT pg_catalog.count(*) FROM %s AS l WHERE (COALESCE(l.tx, -1), l.id) > ($1, $2)', part) INTO unsealed USING tip.lt, tip.li;
          END IF;
          EXECUTE format($sql$SELECT COALESCE(pg_catalog.jsonb_object_agg(x.e, x.n), '{}'::jsonb) FROM (
              SELECT pg_catalog.substring(l.personal, '^\\{"erased":"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"\\}$') AS e, pg_catalog.count(*) AS n
              FROM %s AS l WHERE l.personal LIKE '{"erased":%%' GROUP BY 1) AS x WHERE x.e IS NOT NULL$sql$, part) INTO erased_rows;
          PERFORM pg_catalog.set_config('enable_seqscan', 'on', true);
          held := pg_catalog.jsonb_build_object('erased', erased_rows, 'entries', erasure_entries);
          n := k.sealed + k.left_out + unsealed;
          left_out := k.left_out;
          marked := k.marked;
          covered := k.covered;
          EXECUTE format('DELETE FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1', chunks) USING part;
          EXECUTE format('DELETE FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1', checks) USING part;
          EXECUTE format('INSERT INTO %s (xact, part, filenode, newest, n, unsealed, left_out, marked, covered, held, changes)
              VALUES (pg_current_xact_id(), $1, pg_relation_filenode($1), $2, $3, $4, $5, $6, $7, $8, ${changes})', checks)
            USING part, newest, n, unsealed, left_out, marked, covered, held;
          erasures := held::text;
          RETURN NEXT;
          RETURN;
        END IF;
        ${partsCheckPlpgsql(`'month ' || to_char(m, 'YYYY-MM')`).addUp}
      END
      $fn$`);
    await queryRunner.query(`REVOKE ALL ON FUNCTION ${s}.audit_log_check_month(date) FROM PUBLIC`);
    // Whoever may check a month may ask whether its seals are recorded (retention's code does, to skip the parts).
    await queryRunner.query(`
      DO $$ DECLARE r record; BEGIN
        FOR r IN SELECT a.grantee::regrole::text AS role FROM pg_proc AS p, aclexplode(p.proacl) AS a
          WHERE p.oid = ${lit(`${s}.audit_log_check_month(date)`)}::regprocedure AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 LOOP
          EXECUTE format('GRANT EXECUTE ON FUNCTION %s.audit_log_month_recorded(date) TO %s', ${lit(s)}, r.role);
        END LOOP;
      END $$`);
    // Last: the only step that takes a lock inserts into audit_log wait for (held to the migration's commit).
    await buildErasedIndex(queryRunner, schema);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    await queryRunner.query(`DROP TRIGGER IF EXISTS audit_seal_months ON ${s}.audit_seal`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS ${s}.audit_seal_months()`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS ${s}.audit_seal_record_months(bigint, boolean)`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS ${s}.audit_log_month_recorded(date)`);
    await queryRunner.query(`DROP TABLE IF EXISTS ${s}.audit_seal_month, ${s}.audit_seal_month_erasure, ${s}.audit_seal_recorded`);
    await queryRunner.query(`DROP INDEX IF EXISTS ${s}.audit_log_erased_idx`);
    await new AuditRetireInChunks1766300000000().up(queryRunner);
  }
}
