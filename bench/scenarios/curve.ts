import { type AuditEntry, AuditService } from '../../src/audit';
import { auditContext } from '../support/audit-context';
import { auditEntries } from '../support/entries';
import { captureStderrLines, EventCounter } from '../support/event-lines';
import { countRows, freshAuditDatabase, type TestPostgres } from '../support/postgres';
import { type Figure } from '../support/report';
import { RoundTripSpy } from '../support/round-trips';
import { assertStayedUp, PRODUCERS, producers } from './throughput';

/** Concurrent `log()` callers of each point; the module's `bufferSize` (1000) caps what may wait. */
export const CURVE_PRODUCERS = [1, 10, 100, PRODUCERS] as const;

/** One point of the curve. */
export interface CurvePoint {
  producers: number;
  entries: number;
  ms: number;
  perSec: number;
  batches: number;
  queries: number;
}

/** `count` callers, each awaiting its `log()` in a loop until `seconds` have passed; resolves when the last has its home. */
async function timedProducers(service: AuditService, entries: readonly AuditEntry[], count: number, seconds: number) {
  const started = performance.now();
  const until = started + seconds * 1000;
  let done = 0;
  let next = 0;
  const caller = async () => {
    while (performance.now() < until) {
      await service.log(entries[next++ % entries.length]);
      done += 1;
    }
  };
  await Promise.all(Array.from({ length: count }, caller));
  return { done, ms: performance.now() - started };
}

/**
 * Scenario: audit throughput against the number of concurrent producers ({@link CURVE_PRODUCERS}),
 * each awaiting its `AuditService.log()` in a loop (as a request in sync mode does), `seconds` per
 * point, one app context and one fresh `audit_log`. Round trips and writer batches are counted per
 * point. The module must stay `up` throughout, and the table must hold every entry logged.
 *
 * @example
 * const figures = await curve(pg, 3, details);
 */
export async function curve(pg: TestPostgres, seconds: number, details: Record<string, unknown>): Promise<Figure[]> {
  const url = await freshAuditDatabase(pg, 'curve');
  const entries = auditEntries(20_000);
  const events = new EventCounter();
  const restore = captureStderrLines(events);
  const app = await auditContext(url);
  const points: CurvePoint[] = [];
  let logged = 0;
  try {
    const service = app.get(AuditService);
    await producers(service, entries.slice(0, 2000));
    logged += 2000;
    for (const count of CURVE_PRODUCERS) {
      const spy = RoundTripSpy.start();
      let run: { done: number; ms: number };
      try {
        run = await timedProducers(service, entries, count, seconds);
      } finally {
        spy.stop();
      }
      assertStayedUp(service, events);
      logged += run.done;
      const point = {
        producers: count,
        entries: run.done,
        ms: Math.round(run.ms),
        perSec: (run.done / run.ms) * 1000,
        batches: spy.batches.length,
        queries: spy.queries,
      };
      points.push(point);
      console.log(
        `  ${String(count).padStart(4)} producers: ${point.perSec.toFixed(0)} entries/s, ${(run.done / point.batches).toFixed(1)} rows per batch`,
      );
    }
  } finally {
    await app.close().finally(restore);
  }
  const rows = await countRows(pg, 'curve');
  if (rows !== logged) throw new Error(`curve: ${rows} rows in audit_log, expected ${logged}`);
  printCurve(points);
  details.curve = { seconds, points };
  return points.map((p) => ({
    key: `curve.producers${p.producers}PerSec`,
    value: p.perSec,
    unit: '/s',
    note: `${p.entries} entries in ${p.ms} ms; ${p.batches} batches of ${(p.entries / p.batches).toFixed(1)}; ${(p.queries / p.batches).toFixed(2)} round trips per batch`,
  }));
}

function printCurve(points: readonly CurvePoint[]): void {
  const header = ['producers', 'entries/s', 'rows/batch', 'round trips/batch'];
  const rows = points.map((p) => [
    String(p.producers),
    p.perSec.toFixed(0),
    (p.entries / p.batches).toFixed(1),
    (p.queries / p.batches).toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join(' | ');
  console.log(`\n  ${line(header)}\n  ${widths.map((w) => '-'.repeat(w)).join('-|-')}`);
  for (const row of rows) console.log(`  ${line(row)}`);
  console.log('');
}
