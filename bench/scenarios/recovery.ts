import { AuditService } from '../../src/audit';
import { auditContext } from '../support/audit-context';
import { auditEntries } from '../support/entries';
import { captureStderrLines, EventCounter } from '../support/event-lines';
import { countRows, freshAuditDatabase, type TestPostgres } from '../support/postgres';
import { type Figure } from '../support/report';
import { RoundTripSpy } from '../support/round-trips';

/**
 * Scenario 4, in-process: 1000 `log()` calls buffered while the audit database is killed, then
 * the database restarted. `flush1000Ms` runs from the start of the first audit batch that
 * commits after the restart (the half-open try, made by the retry timer from the oldest buffered
 * batch) to the commit of the last buffered entry, as the writer's `insert` calls see them
 * ({@link RoundTripSpy}). The module's stderr lines are captured and
 * counted; rows are counted before the figure is reported.
 *
 * @example
 * const figures = await recovery(audit, details);
 */
export async function recovery(audit: TestPostgres, details: Record<string, unknown>): Promise<Figure[]> {
  const url = await freshAuditDatabase(audit, 'recovery');
  const events = new EventCounter((event) => event === 'audit.recovered');
  const restore = captureStderrLines(events);
  const app = await auditContext(url, { retryBackoffMs: 100, retryBackoffMaxMs: 200 });
  try {
    const service = app.get(AuditService);
    const entries = auditEntries(1500);
    await Promise.all(entries.slice(0, 500).map((e) => service.log(e)));
    const spy = RoundTripSpy.start();
    let restartedAt: number;
    let observedAt: number;
    try {
      await audit.kill();
      await Promise.all(entries.slice(500).map((e) => service.log(e)));
      const down = service.status();
      if (down.state === 'up' || down.buffered !== 1000 || events.of('audit.buffered') !== 1000) {
        throw new Error(`expected 1000 buffered entries, got ${JSON.stringify(down)}, ${events.of('audit.buffered')} lines`);
      }
      await audit.restart();
      restartedAt = performance.now();
      while (service.status().state !== 'up' || service.status().buffered > 0 || events.of('audit.recovered') === 0) {
        if (performance.now() - restartedAt > 30_000) throw new Error(`no recovery within 30 s: ${JSON.stringify(service.status())}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      observedAt = performance.now();
    } finally {
      spy.stop();
    }
    const rows = await countRows(audit, 'recovery');
    if (rows !== 1500) throw new Error(`${rows} rows after recovery, expected 1500`);
    const flushed = Number(events.lines[0]?.flushed);
    if (flushed !== 1000) throw new Error(`audit.recovered says flushed ${flushed}, expected 1000`);
    const commits = spy.batches.filter((b) => b.committed);
    if (commits.length === 0) throw new Error('no committed audit batch seen after the restart');
    const first = commits[0];
    const lastCommitAt = Math.max(...commits.map((c) => c.settledAt as number));
    const flushMs = lastCommitAt - first.startedAt;
    details.recovery = {
      batches: spy.batches.map((c) => ({
        rows: c.rows,
        committed: c.committed,
        startMs: c.startedAt - restartedAt,
        settledMs: (c.settledAt as number) - restartedAt,
      })),
      restartToFirstTryMs: first.startedAt - restartedAt,
      restartToObservedUpMs: observedAt - restartedAt,
      stderr: Object.fromEntries(events.counts),
    };
    return [
      {
        key: 'recovery.flush1000Ms',
        value: flushMs,
        unit: 'ms',
        target: { op: '<=', value: 60 },
        note: `${commits.length} commits (${commits.map((c) => c.rows).join('+')} rows); first try ${(first.startedAt - restartedAt).toFixed(0)} ms after restart`,
      },
    ];
  } finally {
    await app.close().finally(restore);
  }
}
