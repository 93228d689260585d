import { type MigrationInterface, type QueryRunner } from 'typeorm';
import { AuditRetention1765100000000 } from './1765100000000-AuditRetention';
import { AuditErasure1765200000000 } from './1765200000000-AuditErasure';

/** A double-quoted SQL identifier. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * Retention checked by the database itself (issues 21 and 22, see docs/LIFECYCLE.md):
 *
 * - `audit_seal.retention_erasures`: set on a retention checkpoint (JSON text, covered by its
 *   hash), what the removed month held of erasures: per erasure id the rows erased under it, and
 *   the `audit_erasure` entries (the count each says it erased, the subject's pseudonym). The
 *   verifier adds these to what it finds in the months kept: every erasure is accounted exactly,
 *   whichever months of its rows and of its entry are gone. Nullable without a default.
 * - `audit_log_retire_month(month, keep_months)` replaced (same signature, owner, SECURITY
 *   DEFINER and pinned settings; EXECUTE still revoked from PUBLIC), checking besides what it
 *   checked before, with the partition locked against inserts and erasures (SHARE): that every row
 *   of the month is one a seal sealed (its id in the manifest of the seal whose range holds it,
 *   once), so a forged row the sealer left out keeps its month whatever the calling code
 *   checked; that the checkpoint's manifest marks exactly those rows; and that
 *   `retention_erasures` states exactly the month's erased rows and erasure entries.
 * - `audit_erasure_id`: the id of every erasure made (filled from the erased markers and the
 *   `audit_erasure` entries already there: one scan of those rows), and `audit_log_erase`
 *   replaced (same signature, owner and grant) to record each id it erases under and refuse one
 *   used already: no later call can mark rows with an erasure made before, whose entry counts
 *   only its own rows. The app role has no right on the table.
 * - Triggers on `audit_seal` (BEFORE INSERT, and a constraint trigger deferred to the commit): a
 *   retention checkpoint may be written only for a month whose partition is attached, and
 *   committed only once that partition is gone. A checkpoint is thus always the record of a
 *   removal the function checked; the application's role cannot write one that removes nothing
 *   (to excuse rows, or to make room in an erasure's count).
 *
 * @example
 * TypeOrmModule.forRoot({ ..., migrations: [...AUDIT_MIGRATIONS], migrationsRun: true });
 */
export class AuditRetentionChecks1765300000000 implements MigrationInterface {
  name = 'AuditRetentionChecks1765300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ schema }] = (await queryRunner.query(`SELECT current_schema() AS schema`)) as { schema: string }[];
    const s = ident(schema);
    const lit = (text: string) => `'${text.replaceAll("'", "''")}'`;
    await queryRunner.query(`ALTER TABLE ${s}.audit_seal ADD COLUMN IF NOT EXISTS retention_erasures text`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_retire_month(month date, keep_months integer)
      RETURNS bigint
      LANGUAGE plpgsql SECURITY DEFINER
      SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET lock_timeout = '5s' SET work_mem = '64MB' SET enable_nestloop = off
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
        -- Sealing order is (tx NULLS FIRST, id): a row after the newest seal's last row is not sealed yet.
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s AS l WHERE (l.tx IS NULL AND $1::bigint IS NULL AND l.id > $2)
            OR ($1::bigint IS NULL AND l.tx IS NOT NULL) OR (l.tx >= $1 AND (l.tx > $1 OR l.id > $2)))', part)
          INTO unsealed USING cp.last_tx, cp.last_id;
        IF unsealed THEN
          RAISE EXCEPTION 'month % holds rows not sealed yet', to_char(m, 'YYYY-MM') USING ERRCODE = 'insufficient_privilege';
        END IF;
        -- Each row must be in the manifest of the seal whose range holds it (a seal's range: after the
        -- seal before it, up to its own last row); only the seals whose ranges hold the month's rows
        -- are read. The manifest entries so found are the checkpoint's manifest, bit for bit.
        EXECUTE format($sql$
          WITH r AS MATERIALIZED (SELECT l.ctid AS at, COALESCE(l.tx, -1) AS t, l.id FROM %1$s AS l),
          lo AS (SELECT r.t, r.id FROM r ORDER BY r.t, r.id LIMIT 1),
          hi AS (SELECT r.t, r.id FROM r ORDER BY r.t DESC, r.id DESC LIMIT 1),
          s AS (SELECT x.seq, COALESCE(x.last_tx, -1) AS lt, x.last_id AS li, x.manifest,
                  lag(COALESCE(x.last_tx, -1)) OVER w AS pt, lag(x.last_id) OVER w AS pi
                FROM %2$s AS x WHERE x.retention_month IS NULL WINDOW w AS (ORDER BY x.seq)),
          -- Each manifest read whole once (concatenated: detoasted), not a slice from TOAST per entry.
          c AS MATERIALIZED (SELECT s.seq, s.lt, s.li, s.pt, s.pi, s.manifest || ''::bytea AS manifest FROM s, lo, hi WHERE (s.lt, s.li) >= (lo.t, lo.id)
                  AND s.seq <= (SELECT min(s2.seq) FROM s AS s2 WHERE (s2.lt, s2.li) >= (hi.t, hi.id))),
          e AS MATERIALIZED (SELECT c.seq, i, substring(c.manifest FROM i * 24 + 1 FOR 16) AS b, c.lt, c.li, c.pt, c.pi
                FROM c, generate_series(0, length(c.manifest) / 24 - 1) AS i),
          f AS MATERIALIZED (SELECT r.at, e.seq, e.i FROM r JOIN e ON e.b = uuid_send(r.id)
                  AND (r.t, r.id) <= (e.lt, e.li) AND (e.pt IS NULL OR (r.t, r.id) > (e.pt, e.pi))),
          bits AS (SELECT g.seq, g.i / 8 AS at, bit_or(128 >> (g.i %% 8)) AS v FROM f AS g GROUP BY 1, 2),
          bytes AS (SELECT c.seq, ((length(c.manifest) + 191) / 192)::integer AS len, k.at
                    FROM c, generate_series(0, (length(c.manifest) + 191) / 192 - 1) AS k(at)
                    WHERE c.seq IN (SELECT DISTINCT g.seq FROM f AS g)),
          maps AS (SELECT y.seq, y.len, decode(string_agg(lpad(to_hex(COALESCE(b.v, 0)), 2, '0'), '' ORDER BY y.at), 'hex') AS bitmap
                   FROM bytes AS y LEFT JOIN bits AS b ON b.seq = y.seq AND b.at = y.at GROUP BY y.seq, y.len)
          SELECT (SELECT count(*) FROM r) AS n,
            -- A row with no entry, or two rows on one entry (an id copied), leaves a row unsealed.
            (SELECT count(*) FROM r) - LEAST((SELECT count(*) FROM (SELECT g.at FROM f AS g GROUP BY g.at) AS d),
              (SELECT count(*) FROM (SELECT g.seq, g.i FROM f AS g GROUP BY g.seq, g.i) AS d)) AS left_out,
            (SELECT COALESCE(string_agg(int8send(p.seq) || int4send(p.len) || p.bitmap, ''::bytea ORDER BY p.seq), ''::bytea) FROM maps AS p) AS marked
        $sql$, part, seals) INTO n, left_out, marked;
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
        EXECUTE format($sql$SELECT pg_catalog.jsonb_build_object(
          'erased', COALESCE((SELECT pg_catalog.jsonb_object_agg(x.e, x.n) FROM (
              SELECT pg_catalog.substring(l.personal, '^\\{"erased":"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"\\}$') AS e, pg_catalog.count(*) AS n
              FROM %1$s AS l WHERE true AND l.personal LIKE '{"erased":%%' GROUP BY 1) AS x WHERE x.e IS NOT NULL), '{}'::jsonb),
          'entries', COALESCE((SELECT pg_catalog.jsonb_object_agg(y.e, pg_catalog.jsonb_build_object('rows', y.n, 'subject', y.subject)) FROM (
              SELECT l.changes -> 'erasure' ->> 'id' AS e,
                pg_catalog.sum(CASE WHEN (l.changes -> 'erasure' ->> 'rows') ~ '^[0-9]{1,15}$' THEN (l.changes -> 'erasure' ->> 'rows')::bigint ELSE 0 END) AS n,
                pg_catalog.min(l.changes -> 'erasure' ->> 'subject') AS subject
              FROM %1$s AS l WHERE true AND l.action OPERATOR(pg_catalog.=) 'audit_erasure' GROUP BY 1) AS y WHERE y.e IS NOT NULL), '{}'::jsonb))$sql$, part)
          INTO held;
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
    // Each erasure id used once: the ids of the erasures made so far (markers and entries), then the function.
    await queryRunner.query(
      `CREATE TABLE IF NOT EXISTS ${s}.audit_erasure_id (erasure uuid PRIMARY KEY, used_at timestamptz NOT NULL DEFAULT now())`,
    );
    await queryRunner.query(`REVOKE ALL ON ${s}.audit_erasure_id FROM PUBLIC`);
    await queryRunner.query(`
      INSERT INTO ${s}.audit_erasure_id (erasure)
      SELECT DISTINCT e::uuid FROM (
        SELECT substring(l.personal, '^\\{"erased":"([0-9a-f-]{36})"\\}$') AS e FROM ${s}.audit_log AS l WHERE l.personal LIKE '{"erased":%'
        UNION SELECT l.changes -> 'erasure' ->> 'id' FROM ${s}.audit_log AS l WHERE l.action = 'audit_erasure'
      ) AS u WHERE e ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
      ON CONFLICT DO NOTHING`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_log_erase(by_user_id text, by_entity_type text, by_entity_id text, erasure uuid, dry_run boolean)
      RETURNS TABLE (id uuid, occurred_at timestamptz, state text)
      LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s'
      AS $fn$
      BEGIN
        IF (by_user_id IS NULL) = (by_entity_type IS NULL) OR (by_entity_type IS NULL) <> (by_entity_id IS NULL) THEN
          RAISE EXCEPTION 'audit_log_erase needs a user id, or an entity type and id' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF erasure IS NULL OR dry_run IS NULL THEN
          RAISE EXCEPTION 'audit_log_erase needs an erasure id and dry_run' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- One call per erasure id: no later call can mark more rows with an erasure already made.
        IF NOT dry_run THEN
          INSERT INTO ${s}.audit_erasure_id AS u (erasure) VALUES (erasure) ON CONFLICT DO NOTHING;
          IF NOT FOUND THEN
            RAISE EXCEPTION 'erasure id % was used already: each erasure has its own id', erasure USING ERRCODE = 'unique_violation';
          END IF;
        END IF;
        PERFORM set_config('audit_log.erasing', 'on', true);
        RETURN QUERY
          WITH matched AS (
            SELECT l.id, l.occurred_at,
              CASE WHEN l.commitments IS NULL THEN 'not_erasable'
                   WHEN l.personal LIKE '{"erased":%' THEN 'already_erased' ELSE 'erased' END AS state
            FROM ${s}.audit_log AS l
            WHERE (by_user_id IS NOT NULL AND l.user_id = by_user_id)
               OR (by_entity_type IS NOT NULL AND l.entity_type = by_entity_type AND l.entity_id = by_entity_id)
          ), changed AS (
            UPDATE ${s}.audit_log AS l SET
              user_id = CASE WHEN l.user_id IS NULL THEN NULL ELSE '[ERASED]' END,
              ip = CASE WHEN l.ip IS NULL THEN NULL ELSE '[ERASED]' END,
              user_agent = CASE WHEN l.user_agent IS NULL THEN NULL ELSE '[ERASED]' END,
              personal = '{"erased":"' || erasure::text || '"}'
            FROM matched AS m
            WHERE NOT dry_run AND m.state = 'erased' AND l.id = m.id AND l.occurred_at = m.occurred_at
              AND l.personal NOT LIKE '{"erased":%'
            RETURNING l.id
          )
          -- A row another erasure took first (a concurrent one) is answered as already erased.
          SELECT m.id, m.occurred_at,
            CASE WHEN m.state = 'erased' AND NOT dry_run AND c.id IS NULL THEN 'already_erased' ELSE m.state END
          FROM matched AS m LEFT JOIN changed AS c ON c.id = m.id
          ORDER BY m.occurred_at, m.id;
        PERFORM set_config('audit_log.erasing', 'off', true);
      END
      $fn$`);
    // A checkpoint is committed only with the removal of its month: its partition attached when the
    // checkpoint is written, detached by the commit (only audit_log_retire_month detaches it).
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${s}.audit_seal_checkpoint_applied() RETURNS trigger
      LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD'
      AS $fn$
      DECLARE
        m timestamptz := NEW.retention_month::timestamptz;
        attached boolean;
      BEGIN
        SELECT EXISTS (SELECT FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
          WHERE h.inhparent = ${lit(`${s}.audit_log`)}::regclass
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
      $fn$`);
    await queryRunner.query(`
      CREATE OR REPLACE TRIGGER audit_seal_checkpoint_month BEFORE INSERT ON ${s}.audit_seal
      FOR EACH ROW WHEN (NEW.retention_month IS NOT NULL) EXECUTE FUNCTION ${s}.audit_seal_checkpoint_applied()`);
    await queryRunner.query(`DROP TRIGGER IF EXISTS audit_seal_checkpoint_removed ON ${s}.audit_seal`);
    await queryRunner.query(`
      CREATE CONSTRAINT TRIGGER audit_seal_checkpoint_removed AFTER INSERT ON ${s}.audit_seal DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW WHEN (NEW.retention_month IS NOT NULL) EXECUTE FUNCTION ${s}.audit_seal_checkpoint_applied()`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await new AuditErasure1765200000000().up(queryRunner);
    await queryRunner.query(`DROP TABLE IF EXISTS audit_erasure_id`);
    await queryRunner.query(`DROP TRIGGER IF EXISTS audit_seal_checkpoint_removed ON audit_seal`);
    await queryRunner.query(`DROP TRIGGER IF EXISTS audit_seal_checkpoint_month ON audit_seal`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS audit_seal_checkpoint_applied()`);
    // The function as the retention migration made it; then the column it no longer reads.
    await new AuditRetention1765100000000().up(queryRunner);
    await queryRunner.query(`ALTER TABLE audit_seal DROP COLUMN IF EXISTS retention_erasures`);
  }
}
