import { type TestPostgres } from './postgres';

/** Hits and reads of shared buffers (a read is a block PostgreSQL had to fetch from the OS: its cache or the disk). */
export interface BufferCounts {
  hit: number;
  read: number;
}

/**
 * What PostgreSQL counted: the server's WAL (`pg_stat_wal`) and its writes and flushes of it by
 * every process (`pg_stat_io`, object `wal`), its client sessions' block I/O on relations
 * (`pg_stat_io`: reads into shared buffers, dirty buffers written out to make room, relation
 * extensions, evictions; the times need `track_io_timing` and `track_wal_io_timing`), and the buffer hits and reads of `audit_log` and of each of its
 * indexes in one database (`pg_statio_user_tables`, `pg_statio_user_indexes`), each summed over
 * the partitions (an index under the name of its partitioned index).
 */
export interface ServerCounters {
  wal: { records: number; fpi: number; bytes: number };
  io: { reads: number; readMs: number; writes: number; extends: number; evictions: number };
  walIo: { writes: number; writeMs: number; fsyncs: number; fsyncMs: number };
  table: BufferCounts;
  indexes: Record<string, BufferCounts>;
}

/**
 * Reads {@link ServerCounters} for `audit_log` of `database`. PostgreSQL publishes a session's
 * counts when it goes idle (at most once a second, or ten seconds later) and when it ends: read
 * them once the sessions counted have ended ({@link sessionsEnded}).
 *
 * @example
 * const before = await serverCounters(pg, 'scale_big');
 */
export async function serverCounters(pg: TestPostgres, database: string): Promise<ServerCounters> {
  const client = await pg.connect(database);
  try {
    const leaves = `SELECT relid FROM pg_partition_tree('audit_log') WHERE isleaf`;
    const [wal] = (
      await client.query(`SELECT wal_records::float8 AS records, wal_fpi::float8 AS fpi, wal_bytes::float8 AS bytes FROM pg_stat_wal`)
    ).rows as ServerCounters['wal'][];
    const [io] = (
      await client.query(
        `SELECT coalesce(sum(reads), 0)::float8 AS reads, coalesce(sum(read_time), 0)::float8 AS "readMs",
                coalesce(sum(writes), 0)::float8 AS writes, coalesce(sum(extends), 0)::float8 AS extends,
                coalesce(sum(evictions), 0)::float8 AS evictions
         FROM pg_stat_io WHERE backend_type = 'client backend' AND object = 'relation'`,
      )
    ).rows as ServerCounters['io'][];
    const [walIo] = (
      await client.query(
        `SELECT coalesce(sum(writes), 0)::float8 AS writes, coalesce(sum(write_time), 0)::float8 AS "writeMs",
                coalesce(sum(fsyncs), 0)::float8 AS fsyncs, coalesce(sum(fsync_time), 0)::float8 AS "fsyncMs"
         FROM pg_stat_io WHERE object = 'wal'`,
      )
    ).rows as ServerCounters['walIo'][];
    const [table] = (
      await client.query(
        `SELECT coalesce(sum(heap_blks_hit), 0)::float8 AS hit, coalesce(sum(heap_blks_read), 0)::float8 AS read
         FROM pg_statio_user_tables WHERE relid IN (${leaves})`,
      )
    ).rows as BufferCounts[];
    const indexes = (
      await client.query(
        `SELECT coalesce(pg_partition_root(indexrelid), indexrelid)::regclass::text AS name,
                sum(idx_blks_hit)::float8 AS hit, sum(idx_blks_read)::float8 AS read
         FROM pg_statio_user_indexes WHERE relid IN (${leaves}) GROUP BY 1 ORDER BY 1`,
      )
    ).rows as (BufferCounts & { name: string })[];
    return { wal, io, walIo, table, indexes: Object.fromEntries(indexes.map(({ name, hit, read }) => [name, { hit, read }])) };
  } finally {
    await client.end();
  }
}

/** `after − before`, each count divided by `entries`. */
export function perEntry(before: ServerCounters, after: ServerCounters, entries: number): ServerCounters {
  const each = <T extends object>(a: T, b: T): T => {
    const [x, y] = [a as Record<string, number>, b as Record<string, number>];
    return Object.fromEntries(Object.keys(y).map((k) => [k, (y[k] - (x[k] ?? 0)) / entries])) as T;
  };
  return {
    wal: each(before.wal, after.wal),
    io: each(before.io, after.io),
    walIo: each(before.walIo, after.walIo),
    table: each(before.table, after.table),
    indexes: Object.fromEntries(
      Object.entries(after.indexes).map(([name, counts]) => [name, each(before.indexes[name] ?? { hit: 0, read: 0 }, counts)]),
    ),
  };
}

/** The process ids of the client sessions now connected to `database` (the caller's own left out). */
export async function sessionsOf(pg: TestPostgres, database: string): Promise<number[]> {
  const rows = await pg.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()`,
    [database],
  );
  return rows.map((r) => r.pid);
}

/**
 * Resolves once none of the server processes `pids` is running any more (a session publishes its
 * counts on its way out, after it has left `pg_stat_activity`). The server runs on this machine.
 */
export async function sessionsEnded(pids: readonly number[]): Promise<void> {
  const running = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'EPERM';
    }
  };
  for (let left = pids.filter(running); left.length; left = left.filter(running)) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** One kind of WAL record in a range of the WAL (`pg_walinspect`'s `pg_get_wal_stats`), per entry. */
export interface WalKind {
  kind: string;
  records: number;
  recordBytes: number;
  fpiBytes: number;
}

/**
 * The WAL written from `start` to `end` (LSNs) by kind of record, each count divided by
 * `entries`; the kinds of at least 1 % of the bytes, largest first. Needs `pg_walinspect` in the
 * `postgres` database (`CREATE EXTENSION pg_walinspect`). Undefined when the range is no longer
 * in `pg_wal` (a checkpoint ended in it and recycled its first segment).
 *
 * @example
 * const kinds = await walKinds(pg, start, end, 50_000);
 */
export async function walKinds(pg: TestPostgres, start: string, end: string, entries: number): Promise<WalKind[] | undefined> {
  try {
    const rows = await pg.query<{ kind: string; records: number; record_bytes: number; fpi_bytes: number }>(
      `SELECT "resource_manager/record_type" AS kind, count::float8 AS records, record_size::float8 AS record_bytes, fpi_size::float8 AS fpi_bytes
       FROM pg_get_wal_stats($1::pg_lsn, $2::pg_lsn) WHERE count > 0`,
      [start, end],
    );
    const total = rows.reduce((sum, r) => sum + r.record_bytes + r.fpi_bytes, 0);
    return rows
      .filter((r) => r.record_bytes + r.fpi_bytes >= total / 100)
      .sort((a, b) => b.record_bytes + b.fpi_bytes - (a.record_bytes + a.fpi_bytes))
      .map((r) => ({ kind: r.kind, records: r.records / entries, recordBytes: r.record_bytes / entries, fpiBytes: r.fpi_bytes / entries }));
  } catch {
    return undefined;
  }
}

/** The server's current WAL insert position. */
export async function walPosition(pg: TestPostgres): Promise<string> {
  const [{ lsn }] = await pg.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  return lsn;
}
