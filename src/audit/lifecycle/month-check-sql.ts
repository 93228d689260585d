import { LEAF_FIELDS, LEAF_SQL } from '../integrity/row-encoding';

/**
 * One statement that checks a month's partition against the seals, in the database, reading the
 * month once and sending no row out (docs/LIFECYCLE.md, "How a removal runs"). `partition` and
 * `seals` are the SQL names of the month's partition and of `audit_seal` (or `%1$s` and `%2$s`
 * inside a plpgsql `format()`: the statement holds no other `%`); `where` filters the rows of
 * `partition` (alias `l`), for the audit table with the month's bounds. It answers one row:
 *
 * - `n`: the month's rows;
 * - `unsealed`: rows after the newest seal's last row (sealing order `(tx NULLS FIRST, id)`);
 * - `left_out`: rows in a sealed range that are not the row its seal sealed: no manifest entry
 *   with their id and leaf prefix in the seal whose range holds them, or a second row on one entry
 *   (a forged, invalid, copied or changed row);
 * - `marked`: the retention checkpoint's manifest for these rows (per seal in seq order: its seq,
 *   8 bytes, its bitmap's length, 4, and the bitmap, one bit per manifest entry, most significant
 *   first, set for each row matched);
 * - `covered`: the seq of the newest seal that sealed one of the rows, or NULL.
 *
 * `audit_log_retire_month` runs the same statement (migration `AuditRetireByLeaf1766100000000`).
 * Run it as that function does, with `work_mem` 64 MB and nested loops and merge joins off: the
 * planner estimates the month's seals at one row and their manifests at a thousand entries, and
 * the merge join it chose then wrote tens of GB of temporary files for a 1M-row month.
 *
 * @example
 * const [check] = await query(monthCheckSql('"public"."audit_log_p2026_01"', '"public"."audit_seal"'));
 * check.left_out; // '0' when every row is one a seal sealed
 */
export function monthCheckSql(partition: string, seals: string, where = 'true'): string {
  return `${monthRowsSql(partition, seals, where)}
    SELECT counts.n, counts.unsealed,
      -- A row with no entry, or two rows on one entry, is left out (rows after the newest seal are counted apart).
      counts.n - counts.unsealed - LEAST((SELECT pg_catalog.count(*) FROM (SELECT g.at FROM f AS g GROUP BY g.at) AS d),
        (SELECT pg_catalog.count(*) FROM (SELECT g.seq, g.i FROM f AS g GROUP BY g.seq, g.i) AS d)) AS left_out,
      (SELECT COALESCE(pg_catalog.string_agg(pg_catalog.int8send(p.seq) || pg_catalog.int4send(p.len) || p.bitmap, ''::bytea ORDER BY p.seq), ''::bytea) FROM maps AS p) AS marked,
      (SELECT pg_catalog.max(g.seq) FROM f AS g) AS covered
    FROM counts`;
}

/**
 * The month's check over a part of its partition (`where`: a range of the sealing order, as
 * `PART_ROWS` of lifecycle/month-chunks.ts states it), as
 * {@link monthCheckSql} but answering what the parts add up to: `n`, `unsealed`, `matched` (rows that
 * are the row of a manifest entry), `seqs` and `maps` (the seals that sealed rows of this part,
 * in seq order, and their bitmaps, as in `marked`) and `covered`. Over parts that tile the
 * partition, `left_out` is `n - unsealed - LEAST(matched, the bits set in the maps OR-ed per
 * seal)`: a row of no entry, or two rows (in any parts) on one entry, are left out as in
 * {@link monthCheckSql}. `audit_log_check_month_chunk` runs it (migration
 * `AuditRetireInChunks1766300000000`), and a dry run (lifecycle/month-chunks.ts).
 *
 * @example
 * const [part] = await query(monthChunkSql('"public"."audit_log_p2026_01"', '"public"."audit_seal"', 'COALESCE(l.tx, -1) <= $1'), ['812']);
 * part.matched; // '30000' when every row up to transaction 812 is one a seal sealed
 */
export function monthChunkSql(partition: string, seals: string, where: string): string {
  return `${monthRowsSql(partition, seals, where)}
    SELECT counts.n, counts.unsealed, (SELECT pg_catalog.count(*) FROM (SELECT g.at FROM f AS g GROUP BY g.at) AS d) AS matched,
      (SELECT COALESCE(pg_catalog.array_agg(p.seq ORDER BY p.seq), '{}'::bigint[]) FROM maps AS p) AS seqs,
      (SELECT COALESCE(pg_catalog.array_agg(p.bitmap ORDER BY p.seq), '{}'::bytea[]) FROM maps AS p) AS maps,
      (SELECT pg_catalog.max(g.seq) FROM f AS g) AS covered
    FROM counts`;
}

/**
 * What the rows of `partition` (alias `l`, filtered by `where`) hold of erasures, as
 * lifecycle/checkpoint-erasures.ts states it for a month: one jsonb,
 * `{"erased": {id: rows}, "entries": {id: {"rows", "subject"}}}`. Written for plpgsql's
 * `format()` (its `%%` is one `%`), with the partition as `%1$s` or a name without `%`.
 *
 * @example
 * const body = `EXECUTE format($sql$${monthErasuresSql('%1$s', 'true')}$sql$, part) INTO held;`; // in a plpgsql function
 */
export function monthErasuresSql(partition: string, where: string): string {
  return `SELECT pg_catalog.jsonb_build_object(
          'erased', COALESCE((SELECT pg_catalog.jsonb_object_agg(x.e, x.n) FROM (
              SELECT pg_catalog.substring(l.personal, '^\\{"erased":"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"\\}$') AS e, pg_catalog.count(*) AS n
              FROM ${partition} AS l WHERE ${where} AND l.personal LIKE '{"erased":%%' GROUP BY 1) AS x WHERE x.e IS NOT NULL), '{}'::jsonb),
          'entries', COALESCE((SELECT pg_catalog.jsonb_object_agg(y.e, pg_catalog.jsonb_build_object('rows', y.n, 'subject', y.subject)) FROM (
              SELECT l.changes -> 'erasure' ->> 'id' AS e,
                pg_catalog.sum(CASE WHEN (l.changes -> 'erasure' ->> 'rows') ~ '^[0-9]{1,15}$' THEN (l.changes -> 'erasure' ->> 'rows')::bigint ELSE 0 END) AS n,
                pg_catalog.min(l.changes -> 'erasure' ->> 'subject') AS subject
              FROM ${partition} AS l WHERE ${where} AND l.action OPERATOR(pg_catalog.=) 'audit_erasure' GROUP BY 1) AS y WHERE y.e IS NOT NULL), '{}'::jsonb))`;
}

/** The rows of `partition` matched to their seals' manifest entries: the CTEs both statements above share. */
function monthRowsSql(partition: string, seals: string, where: string): string {
  return `
    WITH r AS MATERIALIZED (SELECT l.ctid AS at, COALESCE(l.tx, -1) AS t, l.id, pg_catalog.uuid_send(l.id) || pg_catalog.substr(${LEAF_SQL}, 1, 8) AS b
            FROM ${partition} AS l, ${LEAF_FIELDS} WHERE ${where}),
    lo AS (SELECT r.t, r.id FROM r ORDER BY r.t, r.id LIMIT 1),
    hi AS (SELECT r.t, r.id FROM r ORDER BY r.t DESC, r.id DESC LIMIT 1),
    s AS (SELECT x.seq, COALESCE(x.last_tx, -1) AS lt, x.last_id AS li, x.manifest,
            pg_catalog.lag(COALESCE(x.last_tx, -1)) OVER w AS pt, pg_catalog.lag(x.last_id) OVER w AS pi
          FROM ${seals} AS x WHERE x.retention_month IS NULL WINDOW w AS (ORDER BY x.seq)),
    newest AS (SELECT s.lt, s.li FROM s ORDER BY s.seq DESC LIMIT 1),
    -- Each manifest read whole once (concatenated: detoasted), not a slice from TOAST per entry.
    c AS MATERIALIZED (SELECT s.seq, s.lt, s.li, s.pt, s.pi, s.manifest || ''::bytea AS manifest FROM s, lo, hi WHERE (s.lt, s.li) >= (lo.t, lo.id)
            AND s.seq <= COALESCE((SELECT pg_catalog.min(s2.seq) FROM s AS s2 WHERE (s2.lt, s2.li) >= (hi.t, hi.id)), (SELECT pg_catalog.max(s3.seq) FROM s AS s3))),
    e AS MATERIALIZED (SELECT c.seq, i, pg_catalog.substr(c.manifest, i * 24 + 1, 24) AS b, c.lt, c.li, c.pt, c.pi
          FROM c, pg_catalog.generate_series(0, pg_catalog.length(c.manifest) / 24 - 1) AS i),
    -- A row matches the entry of its id and leaf prefix (a hash join on those 24 bytes), in the seal whose range holds it.
    f AS MATERIALIZED (SELECT r.at, e.seq, e.i FROM r JOIN e ON e.b = r.b
            WHERE (r.t, r.id) <= (e.lt, e.li) AND (e.pt IS NULL OR (r.t, r.id) > (e.pt, e.pi))),
    bits AS (SELECT g.seq, g.i / 8 AS at, pg_catalog.bit_or(128 >> pg_catalog.mod(g.i, 8)::integer) AS v FROM f AS g GROUP BY 1, 2),
    bytes AS (SELECT c.seq, ((pg_catalog.length(c.manifest) + 191) / 192)::integer AS len, k.at
              FROM c, pg_catalog.generate_series(0, (pg_catalog.length(c.manifest) + 191) / 192 - 1) AS k(at)
              WHERE c.seq IN (SELECT DISTINCT g.seq FROM f AS g)),
    maps AS (SELECT y.seq, y.len, pg_catalog.decode(pg_catalog.string_agg(pg_catalog.lpad(pg_catalog.to_hex(COALESCE(b.v, 0)), 2, '0'), '' ORDER BY y.at), 'hex') AS bitmap
             FROM bytes AS y LEFT JOIN bits AS b ON b.seq = y.seq AND b.at = y.at GROUP BY y.seq, y.len),
    counts AS (SELECT pg_catalog.count(*) AS n,
                 pg_catalog.count(*) FILTER (WHERE newest.lt IS NULL OR (r.t, r.id) > (newest.lt, newest.li)) AS unsealed
               FROM r LEFT JOIN newest ON true)`;
}
