import { SEALER_LOCK } from './seal-store';

/**
 * The session found holding the sealer's lock: its `pid`, the transaction it holds it in
 * (`pg_locks.virtualtransaction`), and how long that transaction has been open by the database's
 * clock (`pg_stat_activity.xact_start`), or `null` when this role may not read it.
 *
 * @example
 * const holder: SealerLockHolder = { pid: 4242, transaction: '5/117', heldMs: null };
 */
export interface SealerLockHolder {
  pid: number | null;
  transaction: string;
  heldMs: number | null;
}

/** A bigint advisory lock is listed in `pg_locks` as its high 32 bits (`classid`) and low 32 bits (`objid`), `objsubid` 1. */
const HIGH = SEALER_LOCK >> 32n;
const LOW = SEALER_LOCK & 0xffff_ffffn;

const HOLDER_SQL = `SELECT l.pid, l.virtualtransaction AS transaction,
       (pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - a.xact_start) * 1000)::float8 AS held_ms
  FROM pg_catalog.pg_locks AS l LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.classid = ${HIGH} AND l.objid = ${LOW} AND l.objsubid = 1
   AND l.database = (SELECT d.oid FROM pg_catalog.pg_database AS d WHERE d.datname = pg_catalog.current_database())
 LIMIT 1`;

/**
 * Who holds the sealer's lock now (null: nobody, it was let go since it was found taken).
 *
 * @example
 * const holder = await sealerLockHolder((sql) => session.query(sql));
 * // { pid: 4242, transaction: '5/117', heldMs: 731_000 }, or null
 */
export async function sealerLockHolder(query: (sql: string) => Promise<unknown>): Promise<SealerLockHolder | null> {
  const [row] = (await query(HOLDER_SQL)) as { pid: number | null; transaction: string; held_ms: number | null }[];
  if (!row) return null;
  return { pid: row.pid, transaction: row.transaction, heldMs: row.held_ms === null ? null : Math.max(0, Number(row.held_ms)) };
}
