import { type INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { AuditLog, AuditModule, AuditService, CreateAuditLog1732700000000 } from '../../src/audit';
import { AUDIT_COLUMNS, auditEntries, rowValues, toRow } from '../support/entries';
import { captureConsoleError, EventCounter } from '../support/event-lines';
import { countRows, freshAuditDatabase, type TestPostgres } from '../support/postgres';
import { type Figure } from '../support/report';

/** Pool size of every path (pg Pool `max`, TypeORM `extra.max`): the example app's audit pool. */
const POOL = 10;
const BATCH = 500;

/** Sizes of one throughput run: entries for raw and module, entries for the naive loop, warm-up. */
export interface ThroughputSizes {
  entries: number;
  naiveEntries: number;
  warmup: number;
}

async function rawPg(url: string, rows: unknown[][]): Promise<void> {
  const pool = new Pool({ connectionString: url, max: POOL });
  try {
    const batches: Promise<unknown>[] = [];
    for (let i = 0; i < rows.length; i += BATCH) {
      const chunk = rows.slice(i, i + BATCH);
      const tuples = chunk.map((_, r) => `(${AUDIT_COLUMNS.map((__, c) => `$${r * AUDIT_COLUMNS.length + c + 1}`).join(', ')})`);
      const sql = `INSERT INTO audit_log (${AUDIT_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT (id) DO NOTHING`;
      batches.push(pool.query(sql, chunk.flat()));
    }
    await Promise.all(batches);
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

/** The module as a user runs it: TypeOrmModule.forRoot + AuditModule.forRoot, no HTTP. */
export function auditContext(url: string, audit: Parameters<typeof AuditModule.forRoot>[0] = {}): Promise<INestApplicationContext> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url,
        entities: [AuditLog],
        migrations: [CreateAuditLog1732700000000],
        migrationsRun: true,
        extra: { max: POOL, connectionTimeoutMillis: 2000 },
      }),
      AuditModule.forRoot({ auditHttp: false, ...audit }),
    ],
  })
  class BenchAuditModule {}
  return NestFactory.createApplicationContext(BenchAuditModule, { logger: false, abortOnError: false });
}

async function timed(run: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

/**
 * Scenario 1: inserts the same realistic entries through raw multi-row `pg` INSERTs, one awaited
 * TypeORM `repository.insert()` each, and `AuditService.log()`; each into a fresh `audit_log`
 * with the same pool size, after a warm-up into that table. Row counts are checked before speed.
 *
 * @example
 * const figures = await throughput(pg, { entries: 100_000, naiveEntries: 10_000, warmup: 2000 }, details);
 */
export async function throughput(pg: TestPostgres, sizes: ThroughputSizes, details: Record<string, unknown>): Promise<Figure[]> {
  const entries = auditEntries(sizes.entries + sizes.warmup);
  const measured = entries.slice(sizes.warmup);
  const warm = entries.slice(0, sizes.warmup);
  const expect = async (db: string, n: number) => {
    const rows = await countRows(pg, db);
    if (rows !== n) throw new Error(`${db}: ${rows} rows in audit_log, expected ${n}`);
  };

  const rawUrl = await freshAuditDatabase(pg, 'tp_raw');
  await rawPg(rawUrl, warm.map((e) => rowValues(toRow(e))));
  const rawRows = measured.map((e) => rowValues(toRow(e)));
  const rawMs = await timed(() => rawPg(rawUrl, rawRows));
  await expect('tp_raw', sizes.warmup + sizes.entries);

  const auditUrl = await freshAuditDatabase(pg, 'tp_audit');
  const events = new EventCounter();
  const restore = captureConsoleError(events);
  const app = await auditContext(auditUrl);
  let auditMs: number;
  try {
    const service = app.get(AuditService);
    await Promise.all(warm.map((e) => service.log(e)));
    auditMs = await timed(() => Promise.all(measured.map((e) => service.log(e))).then(() => undefined));
    const status = service.status();
    if (status.state !== 'up' || status.buffered !== 0 || events.counts.size > 0) {
      throw new Error(`module did not stay up: ${JSON.stringify(status)}, stderr events ${JSON.stringify([...events.counts])}`);
    }
  } finally {
    await app.close().finally(restore);
  }
  await expect('tp_audit', sizes.warmup + sizes.entries);

  const naiveUrl = await freshAuditDatabase(pg, 'tp_naive');
  const naiveEntries = measured.slice(0, sizes.naiveEntries);
  await naive(naiveUrl, warm.slice(0, 500).map(toRow));
  const naiveRows = naiveEntries.map(toRow);
  const naiveMs = await timed(() => naive(naiveUrl, naiveRows));
  await expect('tp_naive', Math.min(500, sizes.warmup) + sizes.naiveEntries);

  const raw = (sizes.entries / rawMs) * 1000;
  const audit = (sizes.entries / auditMs) * 1000;
  const naivePerSec = (sizes.naiveEntries / naiveMs) * 1000;
  Object.assign(details, { throughput: { entries: sizes.entries, naiveEntries: sizes.naiveEntries, warmup: sizes.warmup, pool: POOL, batch: BATCH, rawMs, auditMs, naiveMs } });
  return [
    { key: 'throughput.rawPgPerSec', value: raw, unit: '/s', note: `${sizes.entries} rows, batches of ${BATCH}, pool ${POOL}` },
    { key: 'throughput.naivePerSec', value: naivePerSec, unit: '/s', note: `${sizes.naiveEntries} rows (fewer, rate is what counts)` },
    { key: 'throughput.auditPerSec', value: audit, unit: '/s', note: `${sizes.entries} log() calls, all committed, state up` },
    { key: 'throughput.ratioVsRaw', value: audit / raw, unit: '×', target: { op: '>=', value: 0.5 } },
    { key: 'throughput.ratioVsNaive', value: audit / naivePerSec, unit: '×', target: { op: '>=', value: 10 } },
  ];
}
