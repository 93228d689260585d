import { generateKeyPairSync } from 'node:crypto';
import { AUDIT_MIGRATIONS, AuditQueryService, AuditSealer } from '../../src/audit';
import { monthCheckSql } from '../../src/audit/lifecycle/month-check-sql';
import { runRetention } from '../../src/audit/lifecycle/retention-command';
import { pageQuery } from '../../src/audit/query/audit-query.sql';
import { monthsAgo, trailWithPastMonths } from '../../test/support/past-months';
import { auditContext } from '../support/audit-context';
import { auditEntries } from '../support/entries';
import { captureStderrLines, EventCounter } from '../support/event-lines';
import { HISTORY_SHAPE, historyFillSql } from '../support/history-fill';
import { median } from '../support/load';
import { countRows, freshAuditDatabase, type TestPostgres } from '../support/postgres';
import { latencies, percentile, randomInt, summary } from '../support/read-timing';
import { type Figure } from '../support/report';
import { moduleLog } from './throughput';

/** Rows of the partitioned trail, its months, the two months retired, reads timed, and the insert A/B. */
export interface LifecycleSizes {
  /** Rows over all the months (10M by default). */
  rows: number;
  /** Monthly partitions filled, the months before the current one (12). */
  months: number;
  /** Rows of the oldest month (100k) and of the one after it (1M): the two months retention removes. */
  smallMonth: number;
  largeMonth: number;
  /** Reads timed per kind (2000). */
  queries: number;
  /** Alternating rounds of `log()` into a partitioned and a plain table, and entries per round. */
  insertRounds: number;
  insertEntries: number;
}

const DAY_MS = 86_400_000;
const WARM = 2000;
const DB = 'lifecycle';

/** Row `g` of a month starting at `$3` whose first row is `$4`, one every `$5` seconds. */
const MONTH_FILL = historyFillSql(`$3::timestamptz + ((g - $4::bigint) * $5::double precision) * interval '1 second'`);

/**
 * Scenario: the partitioned `audit_log` (issue 21), on a PostgreSQL of its own.
 *
 * 1. `log()` (as in `throughput`, 1000 callers) into a fresh partitioned table (every audit
 *    migration, `sizes.months` past monthly partitions made as `test/support/past-months.ts`
 *    makes them, this month's and three ahead made by the module) against a fresh plain table of
 *    the same columns, indexes and triggers (every migration but those of {@link PARTITION_MIGRATIONS}),
 *    the same entries, in alternating order for `sizes.insertRounds` rounds: `insertRatio` is the
 *    median of partitioned / plain per round.
 * 2. A trail of `sizes.rows` rows over `sizes.months` monthly partitions, made by PostgreSQL
 *    (INSERT … SELECT generate_series, the `history` scenario's row formulas, two sessions): the
 *    oldest month holds `smallMonth` rows, the next `largeMonth`, the other months the rest in
 *    equal parts. The two oldest months are filled first and sealed by the module's real sealer
 *    (`AuditSealer`, Ed25519-signed seals of 100 000 rows), so that retention may remove them;
 *    the later months stay unsealed (retention looks only at the month it removes).
 * 3. Through `AuditQueryService`, 2000 first pages each of a random entity's history and of a
 *    random user's 30-day range, p99 of each; the plans of both (the module's own SQL, with
 *    `EXPLAIN ANALYZE`) are checked: the user's range reads at most the two partitions its dates
 *    touch (pruning at plan time: the module sends the bounds as literals) and nothing is read by
 *    a sequential scan. An entity's history has no time bound, so no partition can be pruned:
 *    its plan is one index probe per partition under a Merge Append.
 * 4. Retention of the oldest month, then of the next, as `audit-retention --months N
 *    with AUDIT_INTEGRITY_SIGNING_KEY` runs (the command's own code, in this process): the month checked
 *    in the database (`audit_log_check_month`), a signed checkpoint, then `audit_log_retire_month`.
 *    Each month is first listed with `--dry-run` (timed apart: the month's check without its lock
 *    and without the removal).
 *
 * 100M rows (not tried: about 10 GB of disk per 10M rows) extrapolate from the per-partition
 * figures: an insert touches one partition's indexes whatever the number of months, a read with a
 * date range prunes to the months it names, an unbounded entity history costs one index probe per
 * partition and a plan over all of them (so it grows with the number of months kept, not with
 * their size), and a month's removal grows with that month's rows (the dry run's share), not with
 * the table's.
 *
 * @example
 * const figures = await lifecycle(pg, { rows: 10_000_000, months: 12, smallMonth: 100_000, largeMonth: 1_000_000, queries: 2000, insertRounds: 5, insertEntries: 30_000 }, details);
 */
export async function lifecycle(pg: TestPostgres, sizes: LifecycleSizes, details: Record<string, unknown>): Promise<Figure[]> {
  const rest = sizes.rows - sizes.smallMonth - sizes.largeMonth;
  if (sizes.months < 3 || rest < sizes.months - 2) {
    throw new Error(
      `lifecycle: ${sizes.rows} rows do not fill ${sizes.months} months with ${sizes.smallMonth} and ${sizes.largeMonth} rows in the oldest two`,
    );
  }
  const insert = await insertRatio(pg, sizes);
  const keys = generateKeyPairSync('ed25519');
  const signingKey = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await pg.createDatabase(DB);
  await trailWithPastMonths(pg, DB, sizes.months);
  // Per partition: a partitioned table takes no storage parameters. No vacuum of millions of rows lands in a measurement.
  await pg.query(
    `DO $$ DECLARE p regclass; BEGIN
       FOR p IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_log'::regclass LOOP
         EXECUTE format('ALTER TABLE %s SET (autovacuum_enabled = false)', p);
       END LOOP; END $$`,
    [],
    DB,
  );
  await pg.query("ALTER SYSTEM SET max_wal_size = '8GB'");
  await pg.query('SELECT pg_reload_conf()');
  const plan = monthPlan(sizes);
  const fillStarted = performance.now();
  await fillMonths(pg, plan.slice(0, 2));
  const sealStarted = performance.now();
  const sealed = await sealAll(pg, signingKey, sizes.smallMonth + sizes.largeMonth);
  const sealS = (performance.now() - sealStarted) / 1000;
  await fillMonths(pg, plan.slice(2));
  await pg.query('ANALYZE audit_log', [], DB);
  await pg.query('ALTER SYSTEM RESET max_wal_size');
  await pg.query('SELECT pg_reload_conf()');
  await pg.query('CHECKPOINT');
  const fillS = Math.round((performance.now() - fillStarted) / 1000 - sealS);
  const counted = await countRows(pg, DB);
  if (counted !== sizes.rows) throw new Error(`lifecycle: ${counted} rows in audit_log, expected ${sizes.rows}`);
  const [{ size, partitions }] = await pg.query<{ size: string; partitions: number }>(
    `SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) AS size, count(*)::int AS partitions FROM pg_inherits WHERE inhparent = 'audit_log'::regclass`,
    [],
    DB,
  );
  console.log(
    `  ${sizes.rows} rows in ${partitions} partitions (${size}), filled in ${fillS} s; ${sealed.rows} rows sealed in ${sealed.seals} seals, ${sealS.toFixed(0)} s`,
  );
  const reads = await readTimes(pg, sizes);
  const small = await retire(pg, sizes.months, signingKey, sizes.smallMonth);
  const large = await retire(pg, sizes.months - 1, signingKey, sizes.largeMonth);
  details.lifecycle = {
    ...sizes,
    monthRows: plan.map((m) => ({ month: m.month, rows: m.rows })),
    fillS,
    sealS: Math.round(sealS),
    seals: sealed.seals,
    tableSize: size,
    partitions,
    insert,
    entityMs: summary(reads.entityMs),
    userMs: summary(reads.userMs),
    plans: reads.plans,
    retention: { small, large },
  };
  const label = (n: number) => (n % 1_000_000 === 0 ? `${n / 1_000_000}M` : `${n / 1000}k`);
  const ratios = insert.map((r) => r.partitioned / r.plain);
  return [
    {
      key: 'lifecycle.insertRatio',
      value: median(ratios),
      unit: '×',
      target: { op: '>=', value: 0.95 },
      note: `log() into the partitioned table against a plain one, fresh each round; per round ${ratios.map((r) => r.toFixed(2)).join(', ')}; median ${median(insert.map((r) => r.partitioned))} against ${median(insert.map((r) => r.plain))} entries/s`,
    },
    {
      key: 'lifecycle.dropMonthMs',
      value: Math.round(large.ms),
      unit: 'ms',
      target: { op: '<=', value: 1000 },
      note: `audit-retention of a ${label(sizes.largeMonth)}-row month (its dry run ${Math.round(large.dryRunMs)} ms); ${label(sizes.rows)} rows in the table`,
    },
    {
      key: `lifecycle.dropMonthMs${label(sizes.smallMonth)}`,
      value: Math.round(small.ms),
      unit: 'ms',
      target: { op: '<=', value: 1000 },
      note: `the same for a ${label(sizes.smallMonth)}-row month (dry run ${Math.round(small.dryRunMs)} ms)`,
    },
    {
      key: 'lifecycle.entityP99Ms',
      value: percentile(reads.entityMs, 99),
      unit: 'ms',
      target: { op: '<=', value: 5 },
      note: `p50 ${percentile(reads.entityMs, 50).toFixed(2)} ms; ${sizes.queries} random entities; no time bound: an index probe in each of ${reads.plans.entityPartitions} partitions`,
    },
    {
      key: 'lifecycle.userRangeP99Ms',
      value: percentile(reads.userMs, 99),
      unit: 'ms',
      target: { op: '<=', value: 10 },
      note: `p50 ${percentile(reads.userMs, 50).toFixed(2)} ms; 30-day ranges, page of 50; the plan reads ${reads.plans.userPartitions} partition(s) of ${partitions} (${label(sizes.rows)} rows, ${size})`,
    },
  ];
}

interface MonthFill {
  month: string;
  start: string;
  end: string;
  first: number;
  rows: number;
}

/** The months oldest first with their rows and their first row's number. */
function monthPlan(sizes: LifecycleSizes): MonthFill[] {
  const others = sizes.months - 2;
  const rest = sizes.rows - sizes.smallMonth - sizes.largeMonth;
  const plan: MonthFill[] = [];
  let first = 0;
  for (let k = sizes.months; k >= 1; k--) {
    const i = sizes.months - k;
    const rows = i === 0 ? sizes.smallMonth : i === 1 ? sizes.largeMonth : Math.floor(rest / others) + (i - 2 < rest % others ? 1 : 0);
    plan.push({ ...monthsAgo(k), first, rows });
    first += rows;
  }
  return plan;
}

/** Fills each month, 1M rows at a time in two sessions (the fill is CPU-bound in PostgreSQL; two cores). */
async function fillMonths(pg: TestPostgres, months: readonly MonthFill[]): Promise<void> {
  const started = performance.now();
  for (const m of months) {
    const step = (Date.parse(m.end) - Date.parse(m.start)) / 1000 / m.rows;
    for (let done = 0; done < m.rows;) {
      const n = Math.min(1_000_000, m.rows - done);
      const from = m.first + done;
      const half = Math.ceil(n / 2);
      await Promise.all([
        pg.query(MONTH_FILL, [from, from + half, m.start, m.first, step], DB),
        pg.query(MONTH_FILL, [from + half, from + n, m.start, m.first, step], DB),
      ]);
      done += n;
    }
    console.log(`  ${m.month}: ${m.rows} rows (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  }
}

/** Seals every committed row with the module's sealer (`sealNow()` until the seals count `rows`). */
async function sealAll(pg: TestPostgres, signingKey: string, rows: number): Promise<{ rows: number; seals: number }> {
  const events = new EventCounter();
  const restore = captureStderrLines(events);
  const app = await auditContext(pg.url(DB), { integrity: { enabled: true, intervalMs: 3_600_000, maxRowsPerSeal: 100_000, signingKey } });
  try {
    const sealer = app.get(AuditSealer);
    let sealed = 0;
    let seals = 0;
    for (;;) {
      await sealer.sealNow();
      const [{ n, s }] = await pg.query<{ n: string; s: string }>(
        'SELECT coalesce(sum(row_count), 0)::text AS n, count(*)::text AS s FROM audit_seal',
        [],
        DB,
      );
      if (Number(n) === sealed) break;
      sealed = Number(n);
      seals = Number(s);
    }
    if (sealed !== rows)
      throw new Error(`lifecycle: the sealer sealed ${sealed} rows, expected ${rows} (stderr: ${[...events.counts].join(', ')})`);
    return { rows: sealed, seals };
  } finally {
    await app.close().finally(restore);
  }
}

/** `audit-retention --months <k - 1>` (the month `k` back goes), its dry run first; checks what went. */
async function retire(pg: TestPostgres, k: number, signingKey: string, rows: number) {
  const month = monthsAgo(k).month;
  const run = async (dryRun: boolean) => {
    const out: string[] = [];
    const started = performance.now();
    const code = await runRetention(
      ['--url', pg.url(DB), '--months', String(k - 1), ...(dryRun ? ['--dry-run'] : [])],
      { AUDIT_INTEGRITY_SIGNING_KEY: signingKey },
      { out: (line) => out.push(line), err: (line) => out.push(line) },
    );
    const ms = performance.now() - started;
    const line = out.find((l) => l.startsWith(`${dryRun ? 'WOULD_RETIRE' : 'RETIRED'} ${month} `));
    if (code !== 0 || !line || !line.includes(`${rows} rows`)) {
      throw new Error(
        `lifecycle: audit-retention${dryRun ? ' --dry-run' : ''} of ${month} (exit ${code}): ${out.join(' | ').slice(0, 600)}`,
      );
    }
    return { ms, line };
  };
  const dry = await run(true);
  // The one read of the month that remains (audit_log_check_month's statement, with its settings), timed apart.
  const partition = `audit_log_p${month.replace('-', '_')}`;
  const scanStarted = performance.now();
  await pg.query(
    `BEGIN; SET LOCAL work_mem = '64MB'; SET LOCAL enable_nestloop = off; SET LOCAL enable_mergejoin = off; ${monthCheckSql(partition, 'audit_seal')}; COMMIT`,
    [],
    DB,
  );
  const scansMs = performance.now() - scanStarted;
  const done = await run(false);
  const [{ left }] = await pg.query<{ left: number }>(
    `SELECT count(*)::int AS left FROM pg_inherits WHERE inhparent = 'audit_log'::regclass AND inhrelid::regclass::text = $1`,
    [partition],
    DB,
  );
  if (left !== 0) throw new Error(`lifecycle: the partition of ${month} is still attached after retention`);
  console.log(
    `  retention of ${month} (${rows} rows): ${done.ms.toFixed(0)} ms (dry run ${dry.ms.toFixed(0)} ms; the month's check statement alone ${scansMs.toFixed(0)} ms): ${done.line}`,
  );
  return { month, rows, ms: done.ms, dryRunMs: dry.ms, scansMs, line: done.line };
}

/** p99s of the two reads through `AuditQueryService`, and their plans checked for pruning. */
async function readTimes(pg: TestPostgres, sizes: LifecycleSizes) {
  const app = await auditContext(pg.url(DB));
  try {
    const queries = app.get(AuditQueryService);
    const types = ['NDA', 'Invoice', 'User'];
    const start = Date.parse(monthsAgo(sizes.months).start);
    const end = Date.parse(monthsAgo(1).end);
    const entity = () => queries.history(types[randomInt(3)], `e-${randomInt(HISTORY_SHAPE.entities)}`);
    const user = () => {
      const from = new Date(start + randomInt(Math.floor((end - start) / DAY_MS) - 30) * DAY_MS);
      return queries.byUser(`user-${randomInt(HISTORY_SHAPE.users)}`, { from, to: new Date(from.getTime() + 30 * DAY_MS) });
    };
    const entityMs = await latencies(entity, sizes.queries);
    const userMs = await latencies(user, sizes.queries);
    const from = new Date(Date.parse(monthsAgo(4).start) + 10 * DAY_MS);
    const entityPlan = await explain(pg, pageQuery('audit_log', { entityType: 'NDA', entityId: 'e-4711' }, undefined, 50));
    const userPlan = await explain(
      pg,
      pageQuery(
        'audit_log',
        { userId: 'user-42', from: from.toISOString(), to: new Date(from.getTime() + 30 * DAY_MS).toISOString() },
        undefined,
        50,
      ),
    );
    console.log(`  entity p99 ${percentile(entityMs, 99).toFixed(2)} ms, user p99 ${percentile(userMs, 99).toFixed(2)} ms`);
    // PostgreSQL may read an empty partition (legacy, default, months ahead) sequentially: nothing to read. Analyzed: reltuples holds.
    const filled = (
      await pg.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_inherits AS h JOIN pg_class AS c ON c.oid = h.inhrelid
         WHERE h.inhparent = 'audit_log'::regclass AND c.reltuples > 0`,
        [],
        DB,
      )
    ).map((r) => r.name);
    const plans = {
      entity: entityPlan.lines,
      user: userPlan.lines,
      entityPartitions: entityPlan.partitions.length,
      userPartitions: userPlan.partitions.length,
    };
    const scannedFilled = (plan: typeof entityPlan) => plan.seqScans.filter((p) => filled.includes(p));
    if (userPlan.partitions.length === 0 || userPlan.partitions.length > 2 || scannedFilled(userPlan).length > 0) {
      throw new Error(`lifecycle: a user's 30-day range is not pruned to its months: ${userPlan.lines.join(' / ')}`);
    }
    if (scannedFilled(entityPlan).length > 0 || !filled.every((p) => entityPlan.partitions.includes(p))) {
      throw new Error(
        `lifecycle: an entity's history is not an index probe in each month (${filled.join(', ')}): ${entityPlan.lines.join(' / ')}`,
      );
    }
    console.log(
      `  plans: entity reads ${plans.entityPartitions} partitions, user range ${plans.userPartitions} (${userPlan.partitions.join(', ')})`,
    );
    return { entityMs, userMs, plans };
  } finally {
    await app.close();
  }
}

/** `EXPLAIN ANALYZE` of `sql`: its lines, the partitions it reads, and those it reads sequentially. */
async function explain(pg: TestPostgres, sql: string) {
  const rows = await pg.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, [], DB);
  const lines = rows.map((r) => r['QUERY PLAN']);
  const read = (pattern: RegExp) => [...new Set(lines.flatMap((l) => [...l.matchAll(pattern)].map((m) => m[1])))];
  console.log(`    ${lines.filter((l) => /^(Planning|Execution) Time/.test(l)).join(', ')}`);
  return { lines, partitions: read(/ on (audit_log_\w+) audit_log/g), seqScans: read(/Seq Scan on (audit_log_\w+) audit_log/g) };
}

/** What makes and keeps the partitions: the plain table of the insert ratio runs every migration but these. */
const PARTITION_MIGRATIONS = [
  'AuditPartitions1765000000000',
  'AuditPartitionUpkeep1765800000000',
  'AuditUpkeepWithoutWaiting1766200000000',
];

/** `log()` into a fresh partitioned and a fresh plain table, alternating which goes first. */
async function insertRatio(pg: TestPostgres, sizes: LifecycleSizes): Promise<{ plain: number; partitioned: number }[]> {
  const entries = auditEntries(WARM + sizes.insertEntries);
  const [warm, measured] = [entries.slice(0, WARM), entries.slice(WARM)];
  const plainMigrations = AUDIT_MIGRATIONS.filter((m) => !PARTITION_MIGRATIONS.includes(m.name));
  const runs: { plain: number; partitioned: number }[] = [];
  for (let round = 0; round < sizes.insertRounds; round++) {
    const rate = async (kind: 'plain' | 'partitioned') => {
      const name = `lifecycle_${kind}_${round}`;
      if (kind === 'plain') await freshAuditDatabase(pg, name, plainMigrations);
      else {
        await pg.createDatabase(name);
        await trailWithPastMonths(pg, name, sizes.months);
      }
      const [{ relkind }] = await pg.query<{ relkind: string }>(`SELECT relkind FROM pg_class WHERE relname = 'audit_log'`, [], name);
      if (relkind !== (kind === 'plain' ? 'r' : 'p')) throw new Error(`lifecycle: ${name}'s audit_log has relkind ${relkind}`);
      const { ms } = await moduleLog(pg.url(name), warm, measured);
      const counted = await countRows(pg, name);
      if (counted !== entries.length) throw new Error(`lifecycle: ${name} holds ${counted} rows, expected ${entries.length}`);
      await pg.query(`DROP DATABASE ${name} WITH (FORCE)`);
      return Math.round((measured.length / ms) * 1000);
    };
    const order: ('plain' | 'partitioned')[] = round % 2 === 0 ? ['plain', 'partitioned'] : ['partitioned', 'plain'];
    const run = { plain: 0, partitioned: 0 };
    for (const kind of order) run[kind] = await rate(kind);
    runs.push(run);
    console.log(`  round ${round + 1}: log() into the partitioned table ${run.partitioned}/s, the plain one ${run.plain}/s`);
  }
  return runs;
}
