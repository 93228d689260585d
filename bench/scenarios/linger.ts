import { type INestApplicationContext } from '@nestjs/common';
import { AuditService } from '../../src/audit';
import { auditContext } from '../support/audit-context';
import { auditEntries } from '../support/entries';
import { median } from '../support/load';
import { countRows, freshAuditDatabase, type TestPostgres } from '../support/postgres';
import { type Figure } from '../support/report';
import { RoundTripSpy } from '../support/round-trips';

/** Settings of the linger scenario: paced rates (entries/s), lingers (ms), rounds and seconds of each run. */
export interface LingerTimes {
  rates: number[];
  lingers: number[];
  rounds: number;
  seconds: number;
}

/** `log()` at `rate` entries/s for `seconds`, paced by the clock (1 ms ticks), none awaited: as requests in async mode. */
async function paced(service: AuditService, rate: number, seconds: number): Promise<number> {
  const entries = auditEntries(Math.ceil(rate * seconds));
  const started = performance.now();
  let sent = 0;
  while (sent < entries.length) {
    const due = Math.min(entries.length, Math.floor(((performance.now() - started) / 1000) * rate));
    while (sent < due) void service.log(entries[sent++]);
    await new Promise((r) => setTimeout(r, 1));
  }
  return sent;
}

/**
 * Scenario: commits per entry of async `log()` at fixed rates (the load a server of requests makes,
 * not a flood), for each `batchDelayMs`, one app per linger side by side against one database, the
 * lingers alternating round by round. Commits are the writer's batches ({@link RoundTripSpy});
 * the median over rounds is each point's figure. Every entry must have its row.
 *
 * @example
 * const figures = await linger(pg, { rates: [200, 750], lingers: [0, 10, 25], rounds: 3, seconds: 3 }, details);
 */
export async function linger(pg: TestPostgres, times: LingerTimes, details: Record<string, unknown>): Promise<Figure[]> {
  const url = await freshAuditDatabase(pg, 'linger');
  const apps = new Map<number, INestApplicationContext>();
  const points: Record<string, number[]> = {};
  let logged = 0;
  try {
    for (const ms of times.lingers) apps.set(ms, await auditContext(url, { batchDelayMs: ms }));
    for (let round = 0; round < times.rounds; round++) {
      for (const rate of times.rates) {
        for (const ms of times.lingers) {
          const service = (apps.get(ms) as INestApplicationContext).get(AuditService);
          const spy = RoundTripSpy.start();
          let sent: number;
          try {
            sent = await paced(service, rate, times.seconds);
            await new Promise((r) => setTimeout(r, ms + 200));
          } finally {
            spy.stop();
          }
          logged += sent;
          (points[`${rate}/${ms}`] ??= []).push(spy.batches.length / sent);
          if (service.status().state !== 'up') throw new Error(`linger ${ms} ms at ${rate}/s: ${JSON.stringify(service.status())}`);
        }
      }
      console.log(
        `  round ${round + 1}: ${Object.entries(points)
          .map(([k, v]) => `${k} ${v[round].toFixed(3)}`)
          .join(', ')}`,
      );
    }
  } finally {
    for (const app of apps.values()) await app.close();
  }
  const rows = await countRows(pg, 'linger');
  if (rows !== logged) throw new Error(`${rows} rows for ${logged} entries`);
  details.linger = { ...times, points };
  return Object.entries(points).map(([key, values]) => {
    const [rate, ms] = key.split('/');
    return {
      key: `linger.commitsPerEntry.${rate}perS.${ms}ms`,
      value: median(values),
      unit: '',
      note: `batchDelayMs ${ms} at ${rate} entries/s: median of ${values.map((v) => v.toFixed(3)).join(', ')}`,
    };
  });
}
