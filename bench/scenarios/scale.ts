import { auditEntries } from '../support/entries';
import { median } from '../support/load';
import { autovacuumOff, countRows, freshAuditDatabase, type TestPostgres } from '../support/postgres';
import { trailWithPastMonths } from '../../test/support/past-months';
import { type Figure } from '../support/report';
import {
  perEntry,
  type ServerCounters,
  serverCounters,
  sessionsEnded,
  sessionsOf,
  type WalKind,
  walKinds,
  walPosition,
} from '../support/server-counters';
import { moduleLog } from './throughput';

/** A timed run's rate, PostgreSQL's counters per entry over its app's life, and its WAL by kind per measured entry. */
interface Measured {
  perSec: number;
  perEntry: ServerCounters;
  walKinds: WalKind[] | undefined;
}

/** One line of a run's counters per entry: WAL, full-page images, buffer reads by relation, blocks written out. */
function describe(m: Measured): string {
  const c = m.perEntry;
  const indexes = Object.entries(c.indexes);
  const hits = c.table.hit + indexes.reduce((sum, [, i]) => sum + i.hit, 0);
  const reads = [['table', c.table.read] as const, ...indexes.map(([name, i]) => [name.replace(/^audit_log_/, ''), i.read] as const)]
    .filter(([, read]) => read >= 0.005)
    .map(([name, read]) => `${name} ${read.toFixed(2)}`);
  const fpiKinds = (m.walKinds ?? [])
    .filter((k) => k.fpiBytes >= 10)
    .map((k) => `${k.kind} ${k.fpiBytes.toFixed(0)} B`)
    .join(', ');
  return (
    `per entry: WAL ${c.wal.bytes.toFixed(0)} B in ${c.wal.records.toFixed(1)} records, ${c.wal.fpi.toFixed(3)} full-page images` +
    `${fpiKinds ? ` (${fpiKinds})` : ''}; buffers ${hits.toFixed(1)} hit, ${reads.length ? `read: ${reads.join(', ')}` : 'none read'}; ` +
    `read time ${(c.io.readMs * 1000).toFixed(1)} µs; written out by the sessions ${c.io.writes.toFixed(3)}; ` +
    `WAL writes ${c.walIo.writes.toFixed(3)} (${(c.walIo.writeMs * 1000).toFixed(1)} µs), flushes ${c.walIo.fsyncs.toFixed(3)} (${(c.walIo.fsyncMs * 1000).toFixed(1)} µs)`
  );
}

/** Rows already in `audit_log` at each point (0 is the empty table), entries logged per measurement, rounds per point. */
export interface ScaleSizes {
  rows: number[];
  entries: number;
  warmup: number;
  rounds: number;
  /**
   * `months` (the default): the history over monthly partitions, as a year of the module's upkeep
   * leaves it, this month's holding a twelfth of the last point's rows; `one`: every row in the
   * partition `log()` writes to (a legacy table's, before its first month ends).
   */
  layout?: 'months' | 'one';
  /** The server's `shared_buffers` (PostgreSQL's own default, 128MB, unless given). */
  sharedBuffers?: string;
}

const AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const FILL_CHUNK = 1_000_000;

/**
 * History rows `$1`..`$2 - 1`, made by PostgreSQL with the formulas of the bench's entries
 * (`auditEntries`: the same entity ids, users, actions, ip and body shape; the body's numbers
 * repeat every 10,000 rows, built once, as building JSON is most of the cost), `$5` rows in all:
 * the last `$6` of them spread evenly from `$7` to `$3` (now), the others one every 3 s up to
 * `$7` (with `$6` 0 and `$7` now: one every 3 s up to now), with UUIDv7 ids of their own time: the
 * trail looks like a year of this traffic, and new entries append to its time-ordered indexes as
 * they would.
 */
const FILL = `
  WITH body AS MATERIALIZED (
    SELECT k, jsonb_build_object('body', jsonb_build_object(
      'title', format('Mutual NDA for project %s (supplier onboarding)', k),
      'counterparty', format('Counterparty Holdings %s GmbH', k % 97),
      'jurisdiction', 'DE',
      'term', jsonb_build_object('months', 24, 'autoRenew', k % 2 = 0),
      'contacts', jsonb_build_array(format('legal-%s@example.com', k % 13), format('sales-%s@example.com', k % 7)),
      'notes', 'Covers technical drawings, pricing and roadmap shared during the evaluation phase.')) AS changes
    FROM generate_series(0, 9999) AS k
  )
  INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, ip, user_agent, request_id, changes, metadata, recorded_at)
  SELECT uuidv7(t.at - now()), t.at, (ARRAY['nda_created', 'nda_updated', 'nda_signed', 'nda_deleted'])[g % 4 + 1], 'NDA',
    format('0193a1c2-%s-7000-8000-%s', lpad(right(g::text, 4), 4, '0'), lpad(g::text, 12, '0')),
    'user-' || g % 500, 'success', format('10.0.%s.%s', (g >> 8) & 255, g & 255), $4, 'req-' || lpad(g::text, 8, '0'),
    body.changes,
    '{"method": "POST", "route": "/ndas", "params": {}, "statusCode": 201, "durationMs": 3.2}'::jsonb,
    t.at
  FROM generate_series($1::bigint, $2::bigint - 1) AS g
    JOIN body ON body.k = g % 10000,
    LATERAL (SELECT CASE WHEN g < $5::bigint - $6::bigint THEN $7::timestamptz - ($5::bigint - $6::bigint - g) * interval '3 seconds'
      ELSE $7::timestamptz + (g - ($5::bigint - $6::bigint)) * (($3::timestamptz - $7::timestamptz) / nullif($6::bigint, 0)::float8) END AS at) AS t`;

/**
 * Scenario: audit throughput (`AuditService.log()` from 1000 callers, as in `throughput`) into an
 * `audit_log` already holding each of `sizes.rows` rows, against a fresh empty table measured in
 * the same round just before it; the paired ratios' median is each point's figure. The history is
 * inserted with INSERT … SELECT from generate_series into the module's own table (every index and
 * trigger in place), in chunks of 1M rows, oldest first, and grows from one point to the next;
 * after each fill the table is analyzed and the server checkpointed, and autovacuum is off for
 * that table, so that neither the fill's writes nor a vacuum of millions of rows lands in a
 * measurement. With `layout` `months` the table has the monthly partitions a year of upkeep
 * leaves (`test/support/past-months.ts`, then the module's own function for this month and those
 * ahead), and this month, the partition `log()` writes to, holds a twelfth of the last point's
 * rows (as at the end of a month); with `one`, every row is in the partition `log()` writes to.
 * Each run reports PostgreSQL's counters per entry ({@link describe}), kept in `details.scale.runs`.
 *
 * @example
 * const figures = await scale(pg, { rows: [0, 1_000_000, 10_000_000], entries: 50_000, warmup: 2000, rounds: 3 }, details);
 */
export async function scale(pg: TestPostgres, sizes: ScaleSizes, details: Record<string, unknown>): Promise<Figure[]> {
  const entries = auditEntries(sizes.entries + sizes.warmup);
  const warm = entries.slice(0, sizes.warmup);
  const measured = entries.slice(sizes.warmup);
  const points = [...new Set(sizes.rows)].filter((n) => n > 0).sort((a, b) => a - b);
  const last = points[points.length - 1] ?? 0;
  const layout = sizes.layout ?? 'months';
  if (sizes.sharedBuffers) {
    // Taken at the server's start: stopped right after a checkpoint, its restart has nothing to replay.
    await pg.query(`ALTER SYSTEM SET shared_buffers = '${sizes.sharedBuffers.replace(/[^0-9A-Za-z]/g, '')}'`);
    await pg.query('CHECKPOINT');
    await pg.kill();
    await pg.restart();
  }
  const [{ shared_buffers: sharedBuffers }] = await pg.query<{ shared_buffers: string }>('SHOW shared_buffers');
  console.log(`  shared_buffers ${sharedBuffers}, layout ${layout}`);
  let big: string;
  if (layout === 'months') {
    // Twelve past months made as a year of upkeep leaves them, then this month's and those ahead by the module's function.
    await pg.createDatabase('scale_big');
    await trailWithPastMonths(pg, 'scale_big', 12);
    await pg.query('SELECT audit_log_create_partitions(3)', [], 'scale_big');
    big = pg.url('scale_big');
  } else {
    big = await freshAuditDatabase(pg, 'scale_big');
  }
  await autovacuumOff(pg, 'scale_big');
  // Fewer checkpoints while filling (each one makes the next write of every page a full-page image in the WAL).
  await pg.query("ALTER SYSTEM SET max_wal_size = '8GB'");
  // The time of block reads and of the WAL's writes and flushes, per entry (a clock reading each; both tables pay it).
  await pg.query('ALTER SYSTEM SET track_io_timing = on');
  await pg.query('ALTER SYSTEM SET track_wal_io_timing = on');
  await pg.query('SELECT pg_reload_conf()');
  const now = new Date();
  const anchor = now.toISOString();
  // `months`: this month holds a twelfth of the last point's rows, dated from its first instant to now.
  const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString();
  const [thisMonthRows, thisMonthFrom] = layout === 'months' ? [Math.round(last / 12), monthStart] : [0, anchor];
  let generated = 0;
  let empties = 0;
  await pg.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
  // PostgreSQL's counters over the run's whole app (warm-up and measured entries; a session
  // publishes its counts when it ends), and its WAL by kind over the measured part alone.
  const rate = async (url: string, database: string, before: number): Promise<Measured> => {
    const start = await serverCounters(pg, database);
    let from = '';
    let to = '';
    let pids: number[] = [];
    const { ms } = await moduleLog(
      url,
      warm,
      measured,
      {},
      {
        before: async () => void (from = await walPosition(pg)),
        after: async () => {
          to = await walPosition(pg);
          pids = await sessionsOf(pg, database);
        },
      },
    );
    const kinds = await walKinds(pg, from, to, sizes.entries);
    await sessionsEnded(pids);
    const end = await serverCounters(pg, database);
    const counted = await countRows(pg, database);
    if (counted !== before + sizes.warmup + sizes.entries) {
      throw new Error(`${database}: ${counted} rows in audit_log, expected ${before + sizes.warmup + sizes.entries}`);
    }
    return { perSec: (sizes.entries / ms) * 1000, perEntry: perEntry(start, end, sizes.warmup + sizes.entries), walKinds: kinds };
  };
  const runs: { rows: number; empty: number; filled: number; counters: { empty: Measured; filled?: Measured } }[] = [];
  const fills: { rows: number; seconds: number }[] = [];
  const layouts: { rows: number; partitions: { partition: string; rows: number; indexes: string }[] }[] = [];
  for (const target of points.length ? points : [0]) {
    if (target > 0) {
      const started = performance.now();
      let present = await countRows(pg, 'scale_big');
      while (present < target) {
        const n = Math.min(FILL_CHUNK, target - present);
        // Two sessions, one half each: the fill is CPU-bound in PostgreSQL and this machine has two cores.
        const half = Math.ceil(n / 2);
        await Promise.all([
          pg.query(FILL, [generated, generated + half, anchor, AGENT, last, thisMonthRows, thisMonthFrom], 'scale_big'),
          pg.query(FILL, [generated + half, generated + n, anchor, AGENT, last, thisMonthRows, thisMonthFrom], 'scale_big'),
        ]);
        generated += n;
        present += n;
        console.log(`  filled ${present} rows (${((performance.now() - started) / 1000).toFixed(0)} s)`);
      }
      await pg.query('ANALYZE audit_log', [], 'scale_big');
      await pg.query('ALTER SYSTEM RESET max_wal_size');
      await pg.query('SELECT pg_reload_conf()');
      await pg.query('CHECKPOINT');
      fills.push({ rows: target, seconds: Math.round((performance.now() - started) / 1000) });
      // Where the rows are: each partition's rows (as ANALYZE estimates them) and the size of its indexes.
      const partitions = await pg.query<{ partition: string; rows: number; indexes: string }>(
        `SELECT c.relname AS partition, c.reltuples::float8 AS rows, pg_size_pretty(pg_indexes_size(c.oid)) AS indexes
         FROM pg_partition_tree('audit_log') t JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf AND c.reltuples > 0 ORDER BY c.relname`,
        [],
        'scale_big',
      );
      layouts.push({ rows: target, partitions });
      console.log(`  partitions holding rows: ${partitions.map((p) => `${p.partition} ${p.rows} (indexes ${p.indexes})`).join(', ')}`);
    }
    for (let round = 0; round < sizes.rounds; round++) {
      const database = `scale_empty_${empties++}`;
      const empty = await rate(await freshAuditDatabase(pg, database), database, 0);
      const filled = target > 0 ? await rate(big, 'scale_big', await countRows(pg, 'scale_big')) : undefined;
      runs.push({ rows: target, empty: empty.perSec, filled: (filled ?? empty).perSec, counters: { empty, filled } });
      console.log(
        `  ${String(target).padStart(9)} rows: ${(filled ?? empty).perSec.toFixed(0)} entries/s (empty table in the same round: ${empty.perSec.toFixed(0)})`,
      );
      console.log(`    empty  ${describe(empty)}`);
      if (filled) console.log(`    filled ${describe(filled)}`);
    }
  }
  const [{ size }] = await pg.query<{ size: string }>(
    "SELECT pg_size_pretty(sum(pg_total_relation_size(relid))) AS size FROM pg_partition_tree('audit_log')",
    [],
    'scale_big',
  );
  const emptyRate = median(runs.map((r) => r.empty));
  details.scale = { ...sizes, layout, sharedBuffers, runs, fills, layouts, bigTableSize: size };
  const figures: Figure[] = [
    { key: 'scale.emptyPerSec', value: emptyRate, unit: '/s', note: `median of ${runs.map((r) => r.empty.toFixed(0)).join(', ')}` },
  ];
  for (const target of points) {
    const at = runs.filter((r) => r.rows === target);
    const label = target % 1_000_000 === 0 ? `${target / 1_000_000}M` : String(target);
    const fill = fills.find((f) => f.rows === target);
    figures.push(
      {
        key: `scale.perSec${label}`,
        value: median(at.map((r) => r.filled)),
        unit: '/s',
        note: `median of ${at.map((r) => r.filled.toFixed(0)).join(', ')}; filled in ${fill?.seconds} s`,
      },
      {
        key: `scale.ratio${label}`,
        value: median(at.map((r) => r.filled / r.empty)),
        unit: '×',
        target: target === 10_000_000 ? { op: '>=', value: 0.8 } : undefined,
        note: `median of per-round ratios against an empty table${target === last ? `; ${size} of table and indexes` : ''}`,
      },
    );
  }
  return figures;
}
