import { monthCheckSql, monthChunkSql, monthErasuresSql } from './month-check-sql';
import { FIRST_KEY, LAST_KEY, PART_ROWS } from './month-chunks';

/** What this transaction wrote, changed or deleted in `part`: a check stays valid while it is unchanged. */
const CHANGES = 'pg_stat_get_xact_tuples_inserted(part) + pg_stat_get_xact_tuples_updated(part) + pg_stat_get_xact_tuples_deleted(part)';

/** The same, of the partition passed as `$1`. */
const CHANGES_OF_1 = CHANGES.replaceAll('(part)', '($1)');

/** The partition's whole check and erasures into `k` and `held` (`%1$s` the partition, `%2$s` the seal table). */
const WHOLE = `EXECUTE format($sql$${monthCheckSql('%1$s', '%2$s')}$sql$, part, seals) INTO k;
          EXECUTE format($sql$${monthErasuresSql('%1$s', 'true')}$sql$, part) INTO held;`;

/**
 * The PL/pgSQL of a partition's check in parts (docs/LIFECYCLE.md, "How a removal runs"), for the
 * functions that check one partition (`what`: an SQL text naming it in messages), once each
 * function has found it as `part` (regclass) and locked it (SHARE). The functions declare
 * `parent`, `seals`, `chunks` and `checks` (the regclasses of `audit_log`, `audit_seal`,
 * `audit_month_chunk`, `audit_month_check`), `part`, `k record`, `held jsonb` and `newest
 * bigint`. Migration `AuditRetireLegacyInParts1766700000000` makes the legacy partition's from it;
 * a month's (`AuditRetireInChunks1766300000000`) are the same statements for a month.
 *
 * - `chunkDeclare`, `chunkArguments`, `chunkBody`: a part's function, arguments `after_tx, after_id,
 *   upto_tx, upto_id` (NULL: from the first row, to the last) and a `tail record`: checks the rows
 *   of that range of the sealing order and records them for the transaction, refusing a part that
 *   does not begin where the one before ended; returns the part's rows.
 * - `addUp`: the check's body (`RETURNS TABLE (n, unsealed, left_out, marked, covered, erasures)`,
 *   a `summed record`): adds up this transaction's parts when they reach the last row and nothing
 *   changed since the first (otherwise reads the partition whole), and keeps the result for the
 *   removal of the same transaction.
 * - `recorded`: in the removal (a `chk record`, the newest seal `cp`, the checkpoint), `k` (`n`,
 *   `unsealed`, `left_out`, `marked`) and `held`: the check `addUp` kept, while the partition is as it
 *   was checked and no link but the checkpoint was added; otherwise the partition read whole.
 *
 * @example
 * const parts = partsCheckPlpgsql(`'the legacy partition'`);
 * const body = `BEGIN ${parts.chunkArguments} ${findAndLock} ${parts.chunkBody} END`;
 */
export function partsCheckPlpgsql(what: string): {
  chunkDeclare: string;
  chunkArguments: string;
  chunkBody: string;
  addUp: string;
  recorded: string;
} {
  const lit = (text: string) => `'${text}'::uuid`;
  return {
    chunkDeclare: `lo_t bigint := COALESCE(after_tx, ${FIRST_KEY[0]});
        lo_i uuid := COALESCE(after_id, ${lit(FIRST_KEY[1])});
        hi_t bigint := COALESCE(upto_tx, ${LAST_KEY[0]});
        hi_i uuid := COALESCE(upto_id, ${lit(LAST_KEY[1])});`,
    chunkArguments: `IF (after_tx IS NULL) <> (after_id IS NULL) OR (upto_tx IS NULL) <> (upto_id IS NULL) OR lo_t < -2 OR hi_t < -1 OR (hi_t, hi_i) <= (lo_t, lo_i) THEN
          RAISE EXCEPTION 'keys (%, %) to (%, %) bound no part of %', after_tx, after_id, upto_tx, upto_id, ${what} USING ERRCODE = 'invalid_parameter_value';
        END IF;`,
    chunkBody: `IF after_tx IS NULL THEN
          EXECUTE format('DELETE FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1', chunks) USING part;
        ELSE
          -- Each part begins where the one before ended: the parts tile the sealing order, no row in two of them, none in none.
          EXECUTE format('SELECT c.upto_tx, c.upto_id FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1
              ORDER BY c.upto_tx DESC, c.upto_id DESC LIMIT 1', chunks) INTO tail USING part;
          IF tail.upto_tx IS NULL OR (tail.upto_tx, tail.upto_id) <> (lo_t, lo_i) OR (lo_t, lo_i) = (${LAST_KEY[0]}, ${lit(LAST_KEY[1])}) THEN
            RAISE EXCEPTION 'the parts of % follow each other from the first key: (%, %) is not where the last one ended', ${what}, after_tx, after_id
              USING ERRCODE = 'invalid_parameter_value';
          END IF;
        END IF;
        EXECUTE format('SELECT max(seq) FROM %s', seals) INTO newest;
        EXECUTE format($sql$${monthChunkSql('%1$s', '%2$s', PART_ROWS)}$sql$, part, seals) INTO k USING lo_t, lo_i, hi_t, hi_i;
        EXECUTE format($sql$${monthErasuresSql('%1$s', PART_ROWS)}$sql$, part) INTO held USING lo_t, lo_i, hi_t, hi_i;
        EXECUTE format('INSERT INTO %s (xact, part, after_tx, after_id, upto_tx, upto_id, filenode, newest, n, unsealed, matched, seqs, maps, covered, held, changes)
            VALUES (pg_current_xact_id(), $1, $2, $3, $4, $5, pg_relation_filenode($1), $6, $7, $8, $9, $10, $11, $12, $13, ${CHANGES_OF_1})', chunks)
          USING part, lo_t, lo_i, hi_t, hi_i, newest, k.n, k.unsealed, k.matched, k.seqs, k.maps, k.covered, held;
        RETURN k.n;`,
    addUp: `EXECUTE format('SELECT max(seq) FROM %s', seals) INTO newest;
        EXECUTE format('SELECT pg_catalog.bool_or((c.upto_tx, c.upto_id) = (${LAST_KEY[0]}, ''${LAST_KEY[1]}''::uuid)) AS ended,
              pg_catalog.bool_and(c.filenode = pg_relation_filenode($1) AND c.newest IS NOT DISTINCT FROM $2 AND c.changes = ${CHANGES_OF_1}) AS same,
              pg_catalog.sum(c.n) AS n, pg_catalog.sum(c.unsealed) AS unsealed, pg_catalog.sum(c.matched) AS matched, pg_catalog.max(c.covered) AS covered
            FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1', chunks) INTO summed USING part, newest;
        IF summed.ended AND summed.same AND current_setting('transaction_isolation') = 'read committed' THEN
          -- Per seal, the parts' bitmaps OR-ed (a row of each entry matched, in whichever part); the parts' erasures summed.
          EXECUTE format($sql$
            WITH u AS (SELECT x.seq, x.map FROM %s AS c, ROWS FROM (pg_catalog.unnest(c.seqs), pg_catalog.unnest(c.maps)) AS x(seq, map)
                       WHERE c.xact = pg_current_xact_id() AND c.part = $1),
            p AS (SELECT u.seq, pg_catalog.length(pg_catalog.min(u.map)) AS len,
                    pg_catalog.substr(pg_catalog.varbit_send(pg_catalog.bit_or(('x' || pg_catalog.encode(u.map, 'hex'))::varbit)), 5) AS bitmap
                  FROM u GROUP BY u.seq),
            h AS (SELECT c.held FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1)
            SELECT COALESCE((SELECT pg_catalog.string_agg(pg_catalog.int8send(p.seq) || pg_catalog.int4send(p.len) || p.bitmap, ''::bytea ORDER BY p.seq) FROM p), ''::bytea) AS marked,
              (SELECT COALESCE(pg_catalog.sum(pg_catalog.bit_count(p.bitmap)), 0) FROM p) AS entries,
              pg_catalog.jsonb_build_object(
                'erased', COALESCE((SELECT pg_catalog.jsonb_object_agg(x.key, x.n) FROM (
                    SELECT e.key, pg_catalog.sum(e.value::bigint) AS n FROM h, pg_catalog.jsonb_each_text(h.held -> 'erased') AS e GROUP BY 1) AS x), '{}'::jsonb),
                'entries', COALESCE((SELECT pg_catalog.jsonb_object_agg(y.key, pg_catalog.jsonb_build_object('rows', y.n, 'subject', y.subject)) FROM (
                    SELECT e.key, pg_catalog.sum((e.value ->> 'rows')::bigint) AS n, pg_catalog.min(e.value ->> 'subject') AS subject
                    FROM h, pg_catalog.jsonb_each(h.held -> 'entries') AS e GROUP BY 1) AS y), '{}'::jsonb)) AS held$sql$, chunks, chunks) INTO k USING part;
          n := summed.n;
          unsealed := summed.unsealed;
          left_out := summed.n - summed.unsealed - LEAST(summed.matched, k.entries);
          marked := k.marked;
          covered := summed.covered;
          held := k.held;
        ELSE
          ${WHOLE}
          n := k.n;
          unsealed := k.unsealed;
          left_out := k.left_out;
          marked := k.marked;
          covered := k.covered;
        END IF;
        EXECUTE format('DELETE FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1', chunks) USING part;
        EXECUTE format('DELETE FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1', checks) USING part;
        EXECUTE format('INSERT INTO %s (xact, part, filenode, newest, n, unsealed, left_out, marked, covered, held, changes)
            VALUES (pg_current_xact_id(), $1, pg_relation_filenode($1), $2, $3, $4, $5, $6, $7, $8, ${CHANGES_OF_1})', checks)
          USING part, newest, n, unsealed, left_out, marked, covered, held;
        erasures := held::text;
        RETURN NEXT;`,
    recorded: `EXECUTE format('SELECT c.* FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1', checks) INTO chk USING part;
        -- The check of this transaction, under the same SHARE lock, taken while nothing changed since: no row of the partition written,
        -- updated or deleted by this transaction (its counters), the same file (no TRUNCATE or rewrite), no link added but the checkpoint.
        IF chk.xact IS NOT NULL AND chk.filenode = pg_relation_filenode(part) AND chk.changes = ${CHANGES} AND chk.newest IS NOT DISTINCT FROM cp.seq - 1
            AND current_setting('track_counts')::boolean AND current_setting('transaction_isolation') = 'read committed' THEN
          k := chk;
          held := chk.held;
        ELSE
          ${WHOLE}
        END IF;
        EXECUTE format('DELETE FROM %s AS c WHERE c.xact = pg_current_xact_id() AND c.part = $1', checks) USING part;`,
  };
}
