import { startApp } from '../support/app-process';
import { load } from '../support/load';
import { type TestPostgres } from '../support/postgres';
import { type Figure } from '../support/report';

/**
 * Scenario 5: RSS of the example app (child process, async mode) under full load for `seconds`
 * while its audit database is down. Growth is measured from the first sample after the ring
 * filled (the first `audit.evicted` line) to the end; a sample is printed every 5 s.
 *
 * @example
 * const figures = await memory(main, audit, 60, details);
 */
export async function memory(
  main: TestPostgres,
  audit: TestPostgres,
  seconds: number,
  details: Record<string, unknown>,
): Promise<Figure[]> {
  await main.createDatabase('memory');
  await audit.createDatabase('memory_audit');
  const app = await startApp({ DATABASE_URL: main.url('memory'), AUDIT_DATABASE_URL: audit.url('memory_audit') });
  const samples: { s: number; rssMb: number; buffered: number; evicted: number }[] = [];
  const started = Date.now();
  let filledAt: number | undefined;
  const timer = setInterval(() => {
    const sample = {
      s: Math.round((Date.now() - started) / 100) / 10,
      rssMb: Math.round(app.rssMb() * 10) / 10,
      buffered: app.events.of('audit.buffered'),
      evicted: app.events.of('audit.evicted'),
    };
    if (filledAt === undefined && sample.evicted > 0) filledAt = samples.length;
    samples.push(sample);
    if (samples.length % 5 === 0)
      console.log(
        `  t=${String(sample.s).padStart(5)} s  RSS ${sample.rssMb} MiB  buffered lines ${sample.buffered}  evicted ${sample.evicted}`,
      );
  }, 1000);
  let result;
  try {
    await audit.kill();
    result = await load(app.port, seconds);
  } finally {
    clearInterval(timer);
    await app.stop();
    await audit.restart();
  }
  const logged = app.events.of('audit.buffered');
  if (filledAt === undefined) throw new Error('the ring never filled: no audit.evicted line');
  if (logged < result.requests) throw new Error(`${logged} audit.buffered lines for ${result.requests} requests`);
  const after = samples.slice(filledAt);
  const growth = after[after.length - 1].rssMb - after[0].rssMb;
  const peak = Math.max(...after.map((s) => s.rssMb));
  const secondHalf = samples.slice(samples.length >> 1);
  const lateGrowth = secondHalf[secondHalf.length - 1].rssMb - secondHalf[0].rssMb;
  details.memory = { seconds, rps: result.rps, requests: result.requests, samples, filledAtS: after[0].s, peakMb: peak };
  return [
    {
      key: 'memory.rssGrowthMb',
      value: growth,
      unit: 'MiB',
      note: `from ${after[0].rssMb} MiB at t=${after[0].s} s (ring full) to the end; peak ${peak} MiB; ${seconds} s`,
    },
    {
      key: 'memory.rssGrowthSecondHalfMb',
      value: lateGrowth,
      unit: 'MiB',
      note: `t=${secondHalf[0].s} s to the end; samples there ${Math.min(...secondHalf.map((x) => x.rssMb))}–${Math.max(...secondHalf.map((x) => x.rssMb))} MiB`,
    },
    { key: 'memory.entriesLogged', value: logged, unit: '', note: `audit.buffered lines, ${result.rps.toFixed(0)} req/s` },
  ];
}
