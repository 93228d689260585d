import { type INestApplicationContext } from '@nestjs/common';
import { Client } from 'pg';
import { AUDIT_MIGRATIONS, type AuditEntry, AuditSealer, AuditService, CreateAuditLog1732700000000, verifyTrail } from '../../src/audit';
import { auditContext } from '../support/audit-context';
import { auditEntries } from '../support/entries';
import { captureConsoleError, EventCounter } from '../support/event-lines';
import { median } from '../support/load';
import { countRows, freshAuditDatabase, type TestPostgres } from '../support/postgres';
import { type Figure } from '../support/report';
import { producers } from './throughput';

/** Entries per run, warm-up entries, rounds (each round: one run of each variant, in turn). */
export interface IntegritySizes {
  entries: number;
  warmup: number;
  rounds: number;
}

type Variant = 'before' | 'off' | 'on';

/** A fresh audit database with the schema of `variant`: the first migration only, or all of them. */
function database(pg: TestPostgres, name: string, variant: Variant): Promise<string> {
  return freshAuditDatabase(pg, name, variant === 'before' ? [CreateAuditLog1732700000000] : AUDIT_MIGRATIONS);
}

/** log() throughput of one run: the module as configured for `variant`, sealing on its default timer when on. */
async function run(url: string, variant: Variant, warm: readonly AuditEntry[], measured: readonly AuditEntry[]): Promise<number> {
  const events = new EventCounter();
  const restore = captureConsoleError(events);
  let app: INestApplicationContext | undefined;
  try {
    app = await auditContext(url, variant === 'on' ? { integrity: { enabled: true } } : {});
    const service = app.get(AuditService);
    await producers(service, warm);
    const started = performance.now();
    await producers(service, measured);
    const ms = performance.now() - started;
    const status = service.status();
    const unexpected = [...events.counts.keys()].filter((event) => event !== 'audit.sealed');
    if (status.state !== 'up' || status.buffered !== 0 || unexpected.length > 0) {
      throw new Error(`module did not stay up: ${JSON.stringify(status)}, stderr events ${JSON.stringify([...events.counts])}`);
    }
    if (variant === 'on') await app.get(AuditSealer).sealNow();
    return (measured.length / ms) * 1000;
  } finally {
    await app?.close();
    restore();
  }
}

/**
 * Scenario: the cost of integrity. `AuditService.log()` throughput (as in `throughput`) into
 * `audit_log` with the first migration only (`before`), with every audit migration and sealing
 * off (`off`: the `tx` default and its BRIN index, and the read indexes), and with sealing on at
 * its defaults (`on`), variants alternating `rounds` times; medians reported. Each `on` trail is
 * then verified clean, on one connection and as `audit-verify` runs by default, which gives the
 * verifier's rates too.
 *
 * @example
 * const figures = await integrity(pg, { entries: 100_000, warmup: 2000, rounds: 3 }, details);
 */
export async function integrity(pg: TestPostgres, sizes: IntegritySizes, details: Record<string, unknown>): Promise<Figure[]> {
  const entries = auditEntries(sizes.entries + sizes.warmup);
  const warm = entries.slice(0, sizes.warmup);
  const measured = entries.slice(sizes.warmup);
  const rates: Record<Variant, number[]> = { before: [], off: [], on: [] };
  const verifyRates: number[] = [];
  const commandRates: number[] = [];
  let n = 0;
  for (let round = 0; round < sizes.rounds; round++) {
    for (const variant of ['before', 'off', 'on'] as const) {
      const name = `int_${variant}_${n++}`;
      const url = await database(pg, name, variant);
      const rate = await run(url, variant, warm, measured);
      const rows = await countRows(pg, name);
      if (rows !== entries.length) throw new Error(`${name}: ${rows} rows, expected ${entries.length}`);
      rates[variant].push(rate);
      console.log(`  ${variant.padEnd(7)} ${rate.toFixed(0)} rows/s`);
      if (variant === 'on') {
        verifyRates.push(await verifiedClean(url, rows, 1));
        commandRates.push(await verifiedClean(url, rows, COMMAND_JOBS));
      }
    }
  }
  const [before, off, on] = (['before', 'off', 'on'] as const).map((v) => median(rates[v]));
  details.integrity = { ...sizes, rates, verifyRates, commandRates };
  return [
    { key: 'integrity.auditPerSecSealingOff', value: off, unit: '/s', note: `median of ${sizes.rounds} x ${sizes.entries} log()` },
    { key: 'integrity.auditPerSecSealingOn', value: on, unit: '/s', note: 'sealing at its defaults (every 5 s, 20 000 rows a seal)' },
    { key: 'integrity.sealingCost', value: 1 - on / off, unit: '', target: { op: '<=', value: 0.05 }, note: '1 - on/off' },
    {
      key: 'integrity.migrationCost',
      value: 1 - off / before,
      unit: '',
      note: 'the later migrations (the tx column default and its BRIN index, the read indexes), sealing off: 1 - off/before',
    },
    {
      key: 'integrity.verifyRowsPerSec',
      value: median(verifyRates),
      unit: '/s',
      target: { op: '>=', value: 100_000 },
      note: 'verifyTrail(client), one connection',
    },
    {
      key: 'integrity.verifyRowsPerSecCommand',
      value: median(commandRates),
      unit: '/s',
      target: { op: '>=', value: 100_000 },
      note: `as audit-verify runs by default: ${COMMAND_JOBS} connections on one snapshot`,
    },
  ];
}

/** Connections `audit-verify` checks seals on unless told otherwise (`--jobs`). */
const COMMAND_JOBS = 4;

/** Verifies the trail on `jobs` connections, throwing unless clean and complete; returns rows per second. */
async function verifiedClean(url: string, rows: number, jobs: number): Promise<number> {
  const client = new Client({ connectionString: url });
  await client.connect();
  const connect = async () => {
    const worker = new Client({ connectionString: url });
    await worker.connect();
    return worker;
  };
  try {
    const started = performance.now();
    const report = await verifyTrail(client, jobs > 1 ? { jobs, connect } : {});
    const ms = performance.now() - started;
    if (report.anomalyCount > 0 || report.rowsVerified !== rows) {
      throw new Error(`verify: ${report.rowsVerified} of ${rows} rows verified, anomalies ${JSON.stringify(report.byKind)}`);
    }
    return (rows / ms) * 1000;
  } finally {
    await client.end();
  }
}
