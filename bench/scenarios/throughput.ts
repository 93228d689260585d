import { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { type AuditEntry, AuditLog, AuditService } from '../../src/audit';
import { auditContext, POOL } from '../support/audit-context';
import { AUDIT_COLUMNS, auditEntries, rowValues, toRow } from '../support/entries';
import { captureStderrLines, EventCounter } from '../support/event-lines';
import { median } from '../support/load';
import { countRows, freshAuditDatabase, type TestPostgres } from '../support/postgres';
import { type Figure } from '../support/report';
import { RoundTripSpy } from '../support/round-trips';

const BATCH = 500;

/** Entries per raw and module run, entries of the naive loop, warm-up entries, raw/module rounds. */
export interface ThroughputSizes {
  entries: number;
  naiveEntries: number;
  warmup: number;
  rounds: number;
}

/** Multi-row INSERTs straight through `pg`; at most `inFlight` batches at once (the pool caps it anyway). */
async function rawPg(url: string, entries: readonly AuditEntry[], inFlight = POOL): Promise<void> {
  const pool = new Pool({ connectionString: url, max: POOL });
  try {
    let next = 0;
    const worker = async () => {
      while (next < entries.length) {
        const chunk = entries.slice(next, (next += BATCH)).map((e) => rowValues(toRow(e)));
        const tuples = chunk.map((_, r) => `(${AUDIT_COLUMNS.map((__, c) => `$${r * AUDIT_COLUMNS.length + c + 1}`).join(', ')})`);
        const sql = `INSERT INTO audit_log (${AUDIT_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT DO NOTHING`;
        await pool.query(sql, chunk.flat());
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
  } finally {
    await pool.end();
  }
}

async function naive(url: string, rows: ReturnType<typeof toRow>[]): Promise<void> {
  const dataSource = new DataSource({ type: 'postgres', url, entities: [AuditLog], extra: { max: POOL } });
  await dataSource.initialize();
  try {
    const repository = dataSource.getRepository(AuditLog);
    for (const row of rows) await repository.insert(row as Parameters<typeof repository.insert>[0]);
  } finally {
    await dataSource.destroy();
  }
}

async function timed(run: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

/** Entries waiting on the way to the database are bounded by the ring's size (1000): so are the callers. */
export const PRODUCERS = 1000;

/** `count` callers, each logging its next entry once the last one has a home, as requests do. */
export async function producers(service: AuditService, entries: readonly AuditEntry[], count = PRODUCERS): Promise<void> {
  let next = 0;
  const caller = async () => {
    while (next < entries.length) await service.log(entries[next++]);
  };
  await Promise.all(Array.from({ length: count }, caller));
}

/** Throws unless the module stayed `up` with nothing buffered and wrote no stderr line. */
export function assertStayedUp(service: AuditService, events: EventCounter): void {
  const status = service.status();
  if (status.state !== 'up' || status.buffered !== 0 || events.counts.size > 0) {
    throw new Error(`module did not stay up: ${JSON.stringify(status)}, stderr events ${JSON.stringify([...events.counts])}`);
  }
}

/** What one module run measured: its time, and the round trips and batches of the measured part. */
export interface ModuleRun {
  ms: number;
  queries: number;
  batches: number;
  rowsPerBatch: number;
  /** Each committed batch's time from the writer's `insert` call to its commit, in the order sent. */
  batchMs: number[];
}

/** Called just before and just after the timed part of {@link moduleLog}, the app still open (not timed). */
export interface TimedHooks {
  before?: () => Promise<void>;
  after?: () => Promise<void>;
}

/**
 * `AuditService.log()` for `warm`, then timed for `measured`, from {@link PRODUCERS} callers, in
 * an app context of its own on `url` (the module's options `audit`); round trips and batches
 * counted during the timed part. `hooks` run just outside the timing, the app still open.
 *
 * @example
 * const { ms, queries, batches } = await moduleLog(url, warm, measured);
 */
export async function moduleLog(
  url: string,
  warm: readonly AuditEntry[],
  measured: readonly AuditEntry[],
  audit: Parameters<typeof auditContext>[1] = {},
  hooks: TimedHooks = {},
): Promise<ModuleRun> {
  const events = new EventCounter();
  const restore = captureStderrLines(events);
  const app = await auditContext(url, audit);
  try {
    const service = app.get(AuditService);
    await producers(service, warm);
    await hooks.before?.();
    const spy = RoundTripSpy.start();
    let ms: number;
    try {
      ms = await timed(() => producers(service, measured));
    } finally {
      spy.stop();
    }
    await hooks.after?.();
    assertStayedUp(service, events);
    const batchMs = spy.batches.filter((b) => b.committed && b.settledAt !== undefined).map((b) => (b.settledAt as number) - b.startedAt);
    return { ms, queries: spy.queries, batches: spy.batches.length, rowsPerBatch: spy.rowsPerBatch, batchMs };
  } finally {
    await app.close().finally(restore);
  }
}

/**
 * Scenario 1: the same realistic entries inserted through raw multi-row `pg` INSERTs (rows and
 * ids built inside the timing), through `AuditService.log()`, and through one awaited TypeORM
 * `repository.insert()` each; every run into a fresh `audit_log` after a warm-up into it, all with
 * pool size {@link POOL}. Raw and module runs alternate `rounds` times; medians are reported.
 * Row counts are checked before any rate is.
 *
 * @example
 * const figures = await throughput(pg, { entries: 100_000, naiveEntries: 5000, warmup: 2000, rounds: 2 }, details);
 */
export async function throughput(pg: TestPostgres, sizes: ThroughputSizes, details: Record<string, unknown>): Promise<Figure[]> {
  const entries = auditEntries(sizes.entries + sizes.warmup);
  const measured = entries.slice(sizes.warmup);
  const warm = entries.slice(0, sizes.warmup);
  let db = 0;
  const run = async (name: string, write: (url: string) => Promise<number>, rows: number, warmed = sizes.warmup) => {
    const database = `tp_${name}_${db++}`;
    const ms = await write(await freshAuditDatabase(pg, database));
    const counted = await countRows(pg, database);
    if (counted !== warmed + rows) throw new Error(`${database}: ${counted} rows in audit_log, expected ${warmed + rows}`);
    const rate = (rows / ms) * 1000;
    console.log(`  ${name.padEnd(10)} ${rate.toFixed(0)} rows/s`);
    return rate;
  };
  const raw = async (url: string, inFlight = POOL) => {
    await rawPg(url, warm);
    return timed(() => rawPg(url, measured, inFlight));
  };
  const rates: Record<'raw' | 'audit', number[]> = { raw: [], audit: [] };
  const moduleRuns: ModuleRun[] = [];
  const logged = async (url: string) => {
    const result = await moduleLog(url, warm, measured);
    moduleRuns.push(result);
    return result.ms;
  };
  for (let round = 0; round < sizes.rounds; round++) {
    rates.raw.push(await run('raw', raw, sizes.entries));
    rates.audit.push(await run('audit', logged, sizes.entries));
  }
  const queries = moduleRuns.reduce((n, r) => n + r.queries, 0);
  const batches = moduleRuns.reduce((n, r) => n + r.batches, 0);
  const raw2 = await run('raw-2', (url) => raw(url, 2), sizes.entries);
  const naiveRows = measured.slice(0, sizes.naiveEntries).map(toRow);
  const naivePerSec = await run(
    'naive',
    async (url) => {
      await naive(url, warm.slice(0, 500).map(toRow));
      return timed(() => naive(url, naiveRows));
    },
    sizes.naiveEntries,
    Math.min(500, sizes.warmup),
  );
  const rawPerSec = median(rates.raw);
  const audit = median(rates.audit);
  details.throughput = {
    ...sizes,
    pool: POOL,
    batch: BATCH,
    rates,
    raw2InFlightPerSec: raw2,
    naivePerSec,
    moduleRuns: moduleRuns.map((r) => ({ ms: r.ms, queries: r.queries, batches: r.batches, rowsPerBatch: r.rowsPerBatch })),
  };
  return [
    {
      key: 'throughput.rawPgPerSec',
      value: rawPerSec,
      unit: '/s',
      note: `median of ${sizes.rounds} x ${sizes.entries} rows, batches of ${BATCH}, pool ${POOL}`,
    },
    { key: 'throughput.rawPg2InFlightPerSec', value: raw2, unit: '/s', note: 'the same, at most 2 batches in flight like the module' },
    {
      key: 'throughput.naivePerSec',
      value: naivePerSec,
      unit: '/s',
      note: `${sizes.naiveEntries} rows (fewer: the rate is what counts); server with fsync on`,
    },
    {
      key: 'throughput.auditPerSec',
      value: audit,
      unit: '/s',
      note: `median of ${sizes.rounds} x ${sizes.entries} log() from ${PRODUCERS} callers, all committed, stayed up`,
    },
    { key: 'throughput.ratioVsRaw', value: audit / rawPerSec, unit: '×', target: { op: '>=', value: 0.85 } },
    { key: 'throughput.ratioVsNaive', value: audit / naivePerSec, unit: '×', target: { op: '>=', value: 10 } },
    {
      key: 'writer.roundTripsPerBatch',
      value: batches ? queries / batches : null,
      unit: '',
      target: { op: '<=', value: 1 },
      note: `${queries} pg queries / ${batches} writer batches (${((sizes.entries * sizes.rounds) / (batches || 1)).toFixed(0)} rows each on average) in the timed log() runs`,
    },
  ];
}
