import { type INestApplicationContext } from '@nestjs/common';
import { hash, randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AUDIT_MIGRATIONS, type AuditEntry, AuditSealer, AuditService, CreateAuditLog1732700000000, verifyTrail } from '../../src/audit';
import { AuditEntryNormalizer } from '../../src/audit/audit-entry';
import { entrySigner, resolveEntryKeys } from '../../src/audit/integrity/entry-auth';
import { entryDigest } from '../../src/audit/integrity/entry-encoding';
import { auditContext } from '../support/audit-context';
import { auditEntries } from '../support/entries';
import { captureStderrLines, EventCounter } from '../support/event-lines';
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

type Variant = 'before' | 'off' | 'on' | 'keyed' | 'keys';

/** Every variant, in the order a round runs them; `BENCH_INTEGRITY_VARIANTS` may name fewer (`off` is always run). */
const VARIANTS: readonly Variant[] = ['before', 'off', 'on', 'keyed', 'keys'];

/** The entry key of the `keyed` variant: sealing on, and every entry authenticated at birth. */
const ENTRY_KEYS = [{ id: 'bench', secret: randomBytes(32).toString('base64') }];

/** A fresh audit database with the schema of `variant`: the first migration only, or all of them. */
function database(pg: TestPostgres, name: string, variant: Variant): Promise<string> {
  return freshAuditDatabase(pg, name, variant === 'before' ? [CreateAuditLog1732700000000] : AUDIT_MIGRATIONS);
}

/** log() throughput of one run: the module as configured for `variant`, sealing on its default timer when on. */
async function run(url: string, variant: Variant, warm: readonly AuditEntry[], measured: readonly AuditEntry[]): Promise<number> {
  const events = new EventCounter();
  const restore = captureStderrLines(events);
  let app: INestApplicationContext | undefined;
  try {
    // `keys`: every entry authenticated, the sealer idle after its first (empty) run: the birth cost alone.
    const integrityOption = {
      on: { enabled: true },
      keyed: { enabled: true, entryKeys: ENTRY_KEYS },
      keys: { enabled: true, entryKeys: ENTRY_KEYS, intervalMs: 3_600_000 },
    } as const;
    app = await auditContext(
      url,
      variant === 'on' || variant === 'keyed' || variant === 'keys' ? { integrity: integrityOption[variant] } : {},
    );
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
    if (variant === 'on' || variant === 'keyed' || variant === 'keys') await app.get(AuditSealer).sealNow();
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
 * its defaults (`on`), with sealing on and every entry authenticated at birth (`keyed`,
 * `entryKeys`), and with the entry keys but the sealer idle (`keys`: the birth cost alone, codes
 * made and written), variants alternating `rounds` times; medians reported, with each cost's
 * range over the rounds. `BENCH_INTEGRITY_VARIANTS` runs fewer (`off` always runs). Each `on` trail is then
 * verified clean, on one connection and as `audit-verify` runs by default, and each `keyed` trail
 * with the entry key (every row authentic), which gives the verifier's rates too. The CPU cost of
 * the code per entry is measured apart, on `normalize()` alone.
 *
 * @example
 * const figures = await integrity(pg, { entries: 100_000, warmup: 2000, rounds: 3 }, details);
 */
export async function integrity(pg: TestPostgres, sizes: IntegritySizes, details: Record<string, unknown>): Promise<Figure[]> {
  const entries = auditEntries(sizes.entries + sizes.warmup);
  const warm = entries.slice(0, sizes.warmup);
  const measured = entries.slice(sizes.warmup);
  const rates: Record<Variant, number[]> = { before: [], off: [], on: [], keyed: [], keys: [] };
  const chosen = (process.env.BENCH_INTEGRITY_VARIANTS ?? VARIANTS.join(',')).split(',');
  const variants = VARIANTS.filter((v) => v === 'off' || chosen.includes(v));
  const verifyRates: number[] = [];
  const keyedVerifyRates: number[] = [];
  const commandRates: number[] = [];
  let n = 0;
  for (let round = 0; round < sizes.rounds; round++) {
    // Alternating order from round to round, so that no variant always runs after the same one.
    for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) {
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
      if (variant === 'keyed') keyedVerifyRates.push(await verifiedClean(url, rows, COMMAND_JOBS, true));
    }
  }
  const [before, off, on, keyed, keys] = VARIANTS.map((v) => (rates[v].length > 0 ? median(rates[v]) : Number.NaN));
  const birth = birthCost(measured);
  details.integrity = { ...sizes, rates, verifyRates, commandRates, keyedVerifyRates, birth };
  return [
    { key: 'integrity.auditPerSecSealingOff', value: off, unit: '/s', note: `median of ${sizes.rounds} x ${sizes.entries} log()` },
    { key: 'integrity.auditPerSecSealingOn', value: on, unit: '/s', note: 'sealing at its defaults (every 5 s, 20 000 rows a seal)' },
    {
      key: 'integrity.sealingCost',
      value: 1 - on / off,
      unit: '',
      target: { op: '<=', value: 0.05 },
      note: `1 - on/off; per round ${spread(rates.on, rates.off)}`,
    },
    { key: 'integrity.auditPerSecEntryAuth', value: keyed, unit: '/s', note: 'sealing on and every entry authenticated (entryKeys)' },
    {
      key: 'integrity.entryAuthCost',
      value: 1 - keyed / off,
      unit: '',
      target: { op: '<=', value: 0.05 },
      note: `sealing and entry authentication together: 1 - keyed/off; per round ${spread(rates.keyed, rates.off)}`,
    },
    {
      key: 'integrity.entryKeyBirthCost',
      value: 1 - keys / off,
      unit: '',
      note: `entry keys on, the sealer idle (the codes made at birth and written, nothing sealed): 1 - keys/off; per round ${spread(rates.keys, rates.off)}`,
    },
    {
      key: 'integrity.entryAuthMicrosPerEntry',
      value: birth.signedMicros - birth.plainMicros,
      unit: 'µs',
      note:
        `CPU of normalize() with the entry key ${birth.signedMicros.toFixed(2)} µs, without ${birth.plainMicros.toFixed(2)} µs (median of 5 passes); ` +
        `of it the entry digest ${birth.digestMicros.toFixed(2)} µs, against JSON.stringify of the payload ${birth.stringifyMicros.toFixed(2)} µs and a native SHA-256 of the encoding's bytes ${birth.sha256Micros.toFixed(2)} µs`,
    },
    {
      key: 'integrity.verifyRowsPerSecEntryKey',
      value: median(keyedVerifyRates),
      unit: '/s',
      note: `audit-verify with the entry key (every row's code checked), ${COMMAND_JOBS} connections`,
    },
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

/** The cost `1 - variant/off` of each round, as `min–max`: the spread behind a median. */
function spread(variant: readonly number[], off: readonly number[]): string {
  const costs = variant.map((rate, i) => 1 - rate / off[i]).sort((a, b) => a - b);
  return costs.length === 0 ? 'not run' : `${costs[0].toFixed(2)} to ${costs[costs.length - 1].toFixed(2)}`;
}

/** Connections `audit-verify` checks seals on unless told otherwise (`--jobs`). */
const COMMAND_JOBS = 4;

/** Verifies the trail on `jobs` connections, throwing unless clean and complete; returns rows per second. */
async function verifiedClean(url: string, rows: number, jobs: number, withEntryKey = false): Promise<number> {
  const client = new Client({ connectionString: url });
  await client.connect();
  const connect = async () => {
    const worker = new Client({ connectionString: url });
    await worker.connect();
    return worker;
  };
  try {
    const started = performance.now();
    const entryKeys = withEntryKey ? resolveEntryKeys(ENTRY_KEYS) : undefined;
    const report = await verifyTrail(client, { ...(jobs > 1 ? { jobs, connect } : {}), entryKeys });
    const ms = performance.now() - started;
    if (report.anomalyCount > 0 || report.rowsVerified !== rows || (withEntryKey && report.entryAuth.authentic !== rows)) {
      throw new Error(`verify: ${report.rowsVerified} of ${rows} rows verified, anomalies ${JSON.stringify(report.byKind)}`);
    }
    return (rows / ms) * 1000;
  } finally {
    await client.end();
  }
}

/**
 * CPU time of normalize() per entry, in µs, with and without the entry key (median of 5 passes over
 * the same entries); and, over the records normalize() made, the entry digest alone and the two
 * native steps no digest of the content can skip: writing the payload as JSON text, and SHA-256
 * of the encoding's bytes.
 */
function birthCost(entries: readonly AuditEntry[]): {
  plainMicros: number;
  signedMicros: number;
  digestMicros: number;
  stringifyMicros: number;
  sha256Micros: number;
} {
  const plain = new AuditEntryNormalizer([], 64 * 1024);
  const signed = new AuditEntryNormalizer([], 64 * 1024, entrySigner(resolveEntryKeys(ENTRY_KEYS)));
  const records = entries.map((entry) => plain.normalize(entry).record);
  const encodings = records.map((record) => Buffer.from(`audit-entry-v1${JSON.stringify(record)}`));
  // CPU time, not wall time: on a shared machine it is the steadier measure of the work done.
  const pass = <T>(items: readonly T[], work: (item: T) => unknown) => {
    const started = process.cpuUsage();
    for (const item of items) work(item);
    const { user, system } = process.cpuUsage(started);
    return (user + system) / items.length;
  };
  const times = {
    plain: [] as number[],
    signed: [] as number[],
    digest: [] as number[],
    stringify: [] as number[],
    sha256: [] as number[],
  };
  for (let i = 0; i < 5; i++) {
    times.plain.push(pass(entries, (entry) => plain.normalize(entry)));
    times.signed.push(pass(entries, (entry) => signed.normalize(entry)));
    times.digest.push(pass(records, entryDigest));
    times.stringify.push(pass(records, (record) => JSON.stringify(record.changes) + JSON.stringify(record.metadata)));
    times.sha256.push(pass(encodings, (bytes) => hash('sha256', bytes, 'buffer')));
  }
  return {
    plainMicros: median(times.plain),
    signedMicros: median(times.signed),
    digestMicros: median(times.digest),
    stringifyMicros: median(times.stringify),
    sha256Micros: median(times.sha256),
  };
}
