import { AuditQueryService, CreateAuditLog1732700000000 } from '../../src/audit';
import { auditEntries } from '../support/entries';
import { auditContext } from '../support/audit-context';
import { median } from '../support/load';
import { moduleLog } from './throughput';
import { fillHistory, HISTORY_SHAPE } from '../support/history-fill';
import { freshAuditDatabase, type TestPostgres } from '../support/postgres';
import { exported, latencies, percentile, randomInt, summary } from '../support/read-timing';
import { type Figure } from '../support/report';

/** Rows in `audit_log`, queries timed per kind, rows per export. */
export interface HistorySizes {
  rows: number;
  queries: number;
  exportRows: number;
  /** Alternating rounds of `log()` into the first schema and into the current one (the read indexes' cost). */
  insertRounds: number;
}

const DAY_MS = 86_400_000;

/**
 * Scenario: the read side on an `audit_log` of `sizes.rows` rows (a PostgreSQL of its own, every
 * audit migration, filled by {@link fillHistory}): the p99 of one entity's first history page and
 * of one user's 30-day range (first page of 50), `sizes.queries` each through `AuditQueryService`
 * after a warm-up, random entities and users, one at a time; then an NDJSON and a CSV export of
 * the newest `sizes.exportRows` rows into a counting sink, with the process's RSS sampled every 50 ms.
 *
 * @example
 * const figures = await history(pg, { rows: 10_000_000, queries: 2000, exportRows: 1_000_000 }, details);
 */
export async function history(pg: TestPostgres, sizes: HistorySizes, details: Record<string, unknown>): Promise<Figure[]> {
  const insert = await indexCost(pg, sizes.insertRounds);
  const url = await freshAuditDatabase(pg, 'history');
  const fillStarted = performance.now();
  const end = await fillHistory(pg, 'history', sizes.rows);
  const fillS = Math.round((performance.now() - fillStarted) / 1000);
  const start = new Date(end.getTime() - sizes.rows * HISTORY_SHAPE.stepSeconds * 1000);
  const app = await auditContext(url);
  try {
    const queries = app.get(AuditQueryService);
    const types = ['NDA', 'Invoice', 'User'];
    const entity = () => queries.history(types[randomInt(3)], `e-${randomInt(HISTORY_SHAPE.entities)}`);
    const user = () => {
      const from = new Date(start.getTime() + randomInt(Math.floor((end.getTime() - start.getTime()) / DAY_MS) - 30) * DAY_MS);
      return queries.byUser(`user-${randomInt(HISTORY_SHAPE.users)}`, { from, to: new Date(from.getTime() + 30 * DAY_MS) });
    };
    const entityMs = await latencies(entity, sizes.queries);
    const userMs = await latencies(user, sizes.queries);
    const exportFrom = new Date(end.getTime() - sizes.exportRows * HISTORY_SHAPE.stepSeconds * 1000);
    const ndjson = await exported(() => queries.export({ format: 'ndjson', from: exportFrom }), 0);
    // The CSV's first line is its header.
    const csv = await exported(() => queries.export({ format: 'csv', from: exportFrom }), 1);
    const plans = {
      entity: await plan(pg, "entity_type = 'NDA' AND entity_id = 'e-4711'"),
      user: await plan(
        pg,
        "user_id = 'user-42' AND occurred_at >= now() - interval '60 days' AND occurred_at < now() - interval '30 days'",
      ),
    };
    const [{ size }] = await pg.query<{ size: string }>(
      "SELECT pg_size_pretty(sum(pg_total_relation_size(relid))) AS size FROM pg_partition_tree('audit_log')",
      [],
      'history',
    );
    details.history = {
      ...sizes,
      insert,
      fillS,
      tableSize: size,
      entityMs: summary(entityMs),
      userMs: summary(userMs),
      ndjson,
      csv,
      plans,
    };
    console.log(`  entity p99 ${percentile(entityMs, 99).toFixed(2)} ms, user p99 ${percentile(userMs, 99).toFixed(2)} ms`);
    console.log(`  export ${ndjson.rowsPerSec} rows/s NDJSON, ${csv.rowsPerSec} CSV; RSS ${ndjson.rssStartMb}→${ndjson.rssMaxMb} MiB`);
    const rows = `${sizes.rows / 1e6}M rows (${size})`;
    return [
      {
        key: 'history.entityP99Ms',
        value: percentile(entityMs, 99),
        unit: 'ms',
        target: { op: '<=', value: 5 },
        note: `p50 ${percentile(entityMs, 50).toFixed(2)} ms; ${sizes.queries} random entities; ${rows}`,
      },
      {
        key: 'history.userRangeP99Ms',
        value: percentile(userMs, 99),
        unit: 'ms',
        target: { op: '<=', value: 10 },
        note: `p50 ${percentile(userMs, 50).toFixed(2)} ms; 30-day ranges, page of 50`,
      },
      {
        key: 'history.exportRowsPerSec',
        value: ndjson.rowsPerSec,
        unit: '/s',
        target: { op: '>=', value: 50_000 },
        note: `NDJSON, ${ndjson.rows} rows, ${ndjson.mb} MiB in ${ndjson.seconds} s`,
      },
      {
        key: 'history.exportCsvRowsPerSec',
        value: csv.rowsPerSec,
        unit: '/s',
        target: { op: '>=', value: 50_000 },
        note: `CSV, ${csv.mb} MiB`,
      },
      {
        key: 'history.insertRatio',
        value: median(insert.map((r) => r.current / r.first)),
        unit: '×',
        note: `log() into an empty table with the read indexes against the first schema; per round ${insert.map((r) => (r.current / r.first).toFixed(2)).join(', ')}`,
      },
      {
        key: 'history.exportRssGrowthMb',
        value: Math.max(ndjson.rssGrowthMb, csv.rssGrowthMb),
        unit: 'MiB',
        note: `RSS from the first 10 % of an export to its end; peak ${Math.max(ndjson.rssMaxMb, csv.rssMaxMb)} MiB`,
      },
    ];
  } finally {
    await app.close();
  }
}

/** `log()` throughput (as in `throughput`) into fresh tables of the first schema and of the current one, alternating. */
async function indexCost(pg: TestPostgres, rounds: number): Promise<{ first: number; current: number }[]> {
  const entries = auditEntries(32_000);
  const [warm, measured] = [entries.slice(0, 2000), entries.slice(2000)];
  const runs: { first: number; current: number }[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const first =
      (measured.length /
        (await moduleLog(await freshAuditDatabase(pg, `history_v1_${round}`, [CreateAuditLog1732700000000]), warm, measured)).ms) *
      1000;
    const current = (measured.length / (await moduleLog(await freshAuditDatabase(pg, `history_now_${round}`), warm, measured)).ms) * 1000;
    runs.push({ first: Math.round(first), current: Math.round(current) });
    console.log(`  log() into the first schema ${runs[round].first}/s, with the read indexes ${runs[round].current}/s`);
  }
  return runs;
}

async function plan(pg: TestPostgres, where: string): Promise<string[]> {
  const rows = await pg.query<{ 'QUERY PLAN': string }>(
    `EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM audit_log WHERE ${where} ORDER BY occurred_at DESC, id DESC LIMIT 51`,
    [],
    'history',
  );
  return rows.map((r) => r['QUERY PLAN']);
}
