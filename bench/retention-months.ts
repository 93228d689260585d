/**
 * Times retention's pieces on months of chosen sizes (issue 21), apart from the 10M-row `lifecycle`
 * scenario: a PostgreSQL of its own, one monthly partition per size (oldest first, filled with the
 * `history` scenario's rows), every row sealed by the module's sealer (signed seals of 100 000
 * rows), the table vacuumed as autovacuum leaves an old month; then for each month, oldest first:
 * the month's check statement (as a dry run runs it), its erasures, `count(*)`, every row's leaf
 * hash alone, `audit-retention --dry-run` and `audit-retention` (the command's code, in process).
 *
 *   npx tsc -p bench/tsconfig.json && RETENTION_MONTH_ROWS=100000,1000000 node bench/dist/bench/retention-months.js
 */
import { generateKeyPairSync } from 'node:crypto';
import { AuditSealer } from '../src/audit';
import { LEAF_FIELDS, LEAF_SQL } from '../src/audit/integrity/row-encoding';
import { retentionErasures } from '../src/audit/lifecycle/checkpoint-erasures';
import { analyzeMonth, sealHeads } from '../src/audit/lifecycle/month-analysis';
import { runRetention } from '../src/audit/lifecycle/retention-command';
import { monthsAgo, trailWithPastMonths } from '../test/support/past-months';
import { TestPostgres } from '../test/support/postgres';
import { auditContext } from './support/audit-context';
import { historyFillSql } from './support/history-fill';

const DB = 'retention_months';
const FILL = historyFillSql(`$3::timestamptz + ((g - $4::bigint) * $5::double precision) * interval '1 second'`);
/** Retention's own settings for the month's check (retention.ts), and a bound on each statement timed. */
const SETTINGS = `SET LOCAL statement_timeout = '120s'; SET LOCAL work_mem = '64MB'; SET LOCAL enable_nestloop = off; SET LOCAL enable_mergejoin = off`;

async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await work();
  console.log(`  ${label}: ${(performance.now() - started).toFixed(0)} ms`);
  return result;
}

async function fill(pg: TestPostgres, sizes: readonly number[]): Promise<void> {
  let first = 0;
  for (let i = 0; i < sizes.length; i++) {
    const m = monthsAgo(sizes.length + 1 - i);
    const step = (Date.parse(m.end) - Date.parse(m.start)) / 1000 / sizes[i];
    for (let done = 0; done < sizes[i];) {
      const n = Math.min(500_000, sizes[i] - done);
      const half = Math.ceil(n / 2);
      const from = first + done;
      await Promise.all([
        pg.query(FILL, [from, from + half, m.start, first, step], DB),
        pg.query(FILL, [from + half, from + n, m.start, first, step], DB),
      ]);
      done += n;
    }
    first += sizes[i];
    console.log(`${m.month}: ${sizes[i]} rows`);
  }
}

async function sealAll(pg: TestPostgres, signingKey: string): Promise<void> {
  const app = await auditContext(pg.url(DB), { integrity: { enabled: true, intervalMs: 3_600_000, maxRowsPerSeal: 100_000, signingKey } });
  try {
    for (let before = -1; ;) {
      await app.get(AuditSealer).sealNow();
      const [{ n }] = await pg.query<{ n: string }>('SELECT coalesce(sum(row_count), 0)::text AS n FROM audit_seal', [], DB);
      if (Number(n) === before) break;
      before = Number(n);
    }
  } finally {
    await app.close();
  }
}

async function main(): Promise<void> {
  const sizes = (process.env.RETENTION_MONTH_ROWS ?? '100000,1000000').split(',').map(Number);
  const pg = await TestPostgres.start({ durable: true });
  try {
    const signingKey = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await pg.createDatabase(DB);
    await trailWithPastMonths(pg, DB, sizes.length + 1);
    await fill(pg, sizes);
    await sealAll(pg, signingKey);
    await pg.query('VACUUM ANALYZE audit_log', [], DB);
    await pg.query('CHECKPOINT');
    for (let i = 0; i < sizes.length; i++) {
      const k = sizes.length + 1 - i;
      const m = monthsAgo(k);
      const partition = `audit_log_p${m.month.replace('-', '_')}`;
      console.log(`${m.month} (${sizes[i]} rows):`);
      const client = await pg.connect(DB);
      const query = async (sql: string, parameters?: unknown[]) => (await client.query(sql, parameters)).rows as Record<string, unknown>[];
      try {
        await query(`BEGIN; ${SETTINGS}`);
        const heads = await sealHeads(query, 'public.audit_seal');
        await timed('the month checked (the dry run statement)', () =>
          analyzeMonth(query, 'public.audit_log', 'public.audit_seal', heads, m.start, m.end),
        );
        await timed('its erasures', () => retentionErasures(query, 'public.audit_log', m.month));
        await timed('count(*)', () => query(`SELECT count(*) FROM ${partition}`));
        await timed('every leaf hash alone', () =>
          query(`SELECT count(*) FROM ${partition} AS l, ${LEAF_FIELDS} WHERE pg_catalog.substr(${LEAF_SQL}, 1, 8) IS NOT NULL`),
        );
        await query('ROLLBACK');
      } finally {
        await client.end();
      }
      for (const dryRun of [true, false]) {
        const out: string[] = [];
        const code = await timed(`audit-retention${dryRun ? ' --dry-run' : ''}`, () =>
          runRetention(
            ['--url', pg.url(DB), '--months', String(k - 1), ...(dryRun ? ['--dry-run'] : [])],
            { AUDIT_INTEGRITY_SIGNING_KEY: signingKey },
            { out: (line) => out.push(line), err: (line) => out.push(line) },
          ),
        );
        console.log(`    exit ${code}: ${out.find((line) => line.includes(` ${m.month} `)) ?? out.join(' | ')}`);
      }
    }
  } finally {
    await pg.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
