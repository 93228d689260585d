import { LEAF_FIELDS, LEAF_SQL } from '../integrity/row-encoding';
import { PART_ROWS } from './month-chunks';

/**
 * One statement that records, for one seal, what it sealed of each month (docs/LIFECYCLE.md,
 * "What a seal records of its months"): it reads the rows of the seal's range of the sealing order
 * (`PART_ROWS`: `$1, $2` the key after which it begins, `$3, $4` its last row's) from `table`,
 * matches each to the entry of its id and leaf prefix in the manifest (`$5`), as `monthCheckSql`
 * does, counts the rows of its last transaction after its last row, and inserts for seal `$6`:
 *
 * - into `months`, per month (UTC) of the range's rows: `rows` (rows that are the row of an entry,
 *   one per entry), `left_out` (the month's other rows in the range: forged, invalid, copied or
 *   changed rows the sealer left out), `tail` (the month's rows of the seal's last transaction
 *   after its last row: not sealed yet, and no row can join them, that transaction having ended)
 *   and `bitmap` (one bit per manifest entry, most significant first, set for that month's rows);
 * - into `erasures`, per month and erasure id, the `audit_erasure` entries of the range: the rows
 *   they count and the least subject pseudonym, as `monthErasuresSql` states them.
 *
 * It answers `listed` (the manifest's entries) and `found` (entries a row of the range matched):
 * fewer found than listed is a manifest that names a row not there. Written for plpgsql's `EXECUTE`
 * (no `format()`): the names are schema-qualified and quoted by the caller.
 *
 * @example
 * const sql = sealMonthsSql('"public"."audit_log"', '"public"."audit_seal_month"', '"public"."audit_seal_month_erasure"');
 * // EXECUTE sql INTO k USING lo_t, lo_i, hi_t, hi_i, manifest, seq;
 */
export function sealMonthsSql(table: string, months: string, erasures: string): string {
  return `WITH r AS MATERIALIZED (SELECT pg_catalog.row_number() OVER () AS at, pg_catalog.date_trunc('month', l.occurred_at)::date AS mo,
          pg_catalog.uuid_send(l.id) || pg_catalog.substr(${LEAF_SQL}, 1, 8) AS b,
          CASE WHEN l.action OPERATOR(pg_catalog.=) 'audit_erasure' THEN l.changes -> 'erasure' END AS er
        FROM ${table} AS l, ${LEAF_FIELDS} WHERE ${PART_ROWS}),
      e AS MATERIALIZED (SELECT i, pg_catalog.substr($5::bytea, i * 24 + 1, 24) AS b FROM pg_catalog.generate_series(0, pg_catalog.length($5::bytea) / 24 - 1) AS i),
      f AS MATERIALIZED (SELECT r.at, r.mo, e.i FROM r JOIN e ON e.b = r.b),
      -- The rows of the seal's last transaction after its last row (no leaf needed: only counted).
      tl AS (SELECT pg_catalog.date_trunc('month', l.occurred_at)::date AS mo, pg_catalog.count(*) AS tail FROM ${table} AS l
             WHERE $3::bigint >= 0 AND l.tx = $3::bigint AND l.id > $4::uuid GROUP BY 1),
      per AS (SELECT COALESCE(x.mo, tl.mo) AS mo, COALESCE(x.n, 0) AS n, COALESCE(tl.tail, 0) AS tail
              FROM (SELECT r.mo, pg_catalog.count(*) AS n FROM r GROUP BY r.mo) AS x FULL JOIN tl ON tl.mo = x.mo),
      fm AS (SELECT f.mo, pg_catalog.count(DISTINCT f.at) AS matched, pg_catalog.count(DISTINCT f.i) AS entries FROM f GROUP BY f.mo),
      bits AS (SELECT f.mo, f.i / 8 AS at, pg_catalog.bit_or(128 >> pg_catalog.mod(f.i, 8)::integer) AS v FROM f GROUP BY 1, 2),
      bytes AS (SELECT fm.mo, y.at FROM fm, pg_catalog.generate_series(0, (pg_catalog.length($5::bytea) + 191) / 192 - 1) AS y(at)),
      maps AS (SELECT y.mo, pg_catalog.decode(pg_catalog.string_agg(pg_catalog.lpad(pg_catalog.to_hex(COALESCE(b.v, 0)), 2, '0'), '' ORDER BY y.at), 'hex') AS bitmap
               FROM bytes AS y LEFT JOIN bits AS b ON b.mo = y.mo AND b.at = y.at GROUP BY y.mo),
      put AS (INSERT INTO ${months} (seq, month, rows, left_out, tail, bitmap)
              SELECT $6::bigint, per.mo, LEAST(COALESCE(fm.matched, 0), COALESCE(fm.entries, 0)),
                per.n - LEAST(COALESCE(fm.matched, 0), COALESCE(fm.entries, 0)), per.tail, COALESCE(maps.bitmap, ''::bytea)
              FROM per LEFT JOIN fm ON fm.mo = per.mo LEFT JOIN maps ON maps.mo = per.mo RETURNING 1),
      held AS (INSERT INTO ${erasures} (seq, month, erasure, rows, subject)
              SELECT $6::bigint, r.mo, r.er ->> 'id',
                pg_catalog.sum(CASE WHEN (r.er ->> 'rows') ~ '^[0-9]{1,15}$' THEN (r.er ->> 'rows')::bigint ELSE 0 END), pg_catalog.min(r.er ->> 'subject')
              FROM r WHERE r.er ->> 'id' IS NOT NULL GROUP BY r.mo, r.er ->> 'id' RETURNING 1)
    SELECT pg_catalog.length($5::bytea) / 24 AS listed, (SELECT pg_catalog.count(DISTINCT f.i) FROM f) AS found,
      (SELECT pg_catalog.count(*) FROM put) AS months, (SELECT pg_catalog.count(*) FROM held) AS held`;
}
