import { DataSource, type EntityManager } from 'typeorm';
import { AuditService } from '../../src/audit';
import { auditContext } from '../support/audit-context';
import { auditEntries } from '../support/entries';
import { captureConsoleError, EventCounter } from '../support/event-lines';
import { countRows, freshAuditDatabase, type TestPostgres } from '../support/postgres';
import { type Figure } from '../support/report';

interface Commit {
  startedAt: number;
  committedAt: number;
  rows: number;
}

/** Records each audit transaction that commits: when it began, when it committed, its rows. */
function recordCommits(dataSource: DataSource): Commit[] {
  const commits: Commit[] = [];
  const manager = dataSource.manager;
  const transaction = manager.transaction.bind(manager) as (run: (m: EntityManager) => Promise<unknown>) => Promise<unknown>;
  manager.transaction = (async (run: (m: EntityManager) => Promise<unknown>) => {
    const startedAt = performance.now();
    let rows = 0;
    const result = await transaction((m) => {
      const query = m.query.bind(m);
      m.query = ((sql: string, parameters?: unknown[]) => {
        if (sql.startsWith('INSERT')) rows += (parameters?.length ?? 0) / 12;
        return query(sql, parameters);
      }) as typeof m.query;
      return run(m);
    });
    commits.push({ startedAt, committedAt: performance.now(), rows });
    return result;
  }) as typeof manager.transaction;
  return commits;
}

/**
 * Scenario 4, in-process: 1000 `log()` calls buffered while the audit database is killed, then
 * the database restarted. `flush1000Ms` runs from the start of the first audit transaction that
 * commits after the restart (the half-open try, made by the retry timer from the oldest buffered
 * batch) to the commit of the last buffered entry. The module's stderr lines are captured and
 * counted; rows are counted before the figure is reported.
 *
 * @example
 * const figures = await recovery(audit, details);
 */
export async function recovery(audit: TestPostgres, details: Record<string, unknown>): Promise<Figure[]> {
  const url = await freshAuditDatabase(audit, 'recovery');
  const events = new EventCounter((event) => event === 'audit.recovered');
  const restore = captureConsoleError(events);
  const app = await auditContext(url, { retryBackoffMs: 100, retryBackoffMaxMs: 200 });
  try {
    const service = app.get(AuditService);
    const entries = auditEntries(1500);
    await Promise.all(entries.slice(0, 500).map((e) => service.log(e)));
    const commits = recordCommits(app.get(DataSource));
    await audit.kill();
    await Promise.all(entries.slice(500).map((e) => service.log(e)));
    const down = service.status();
    if (down.state === 'up' || down.buffered !== 1000 || events.of('audit.buffered') !== 1000) {
      throw new Error(`expected 1000 buffered entries, got ${JSON.stringify(down)}, ${events.of('audit.buffered')} lines`);
    }
    await audit.restart();
    const restartedAt = performance.now();
    while (service.status().state !== 'up' || service.status().buffered > 0 || events.of('audit.recovered') === 0) {
      if (performance.now() - restartedAt > 30_000) throw new Error(`no recovery within 30 s: ${JSON.stringify(service.status())}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const observedAt = performance.now();
    const rows = await countRows(audit, 'recovery');
    if (rows !== 1500) throw new Error(`${rows} rows after recovery, expected 1500`);
    const flushed = Number(events.lines[0]?.flushed);
    if (flushed !== 1000) throw new Error(`audit.recovered says flushed ${flushed}, expected 1000`);
    const first = commits[0];
    const last = commits[commits.length - 1];
    const flushMs = last.committedAt - first.startedAt;
    details.recovery = {
      commits: commits.map((c) => ({ rows: c.rows, startMs: c.startedAt - restartedAt, commitMs: c.committedAt - restartedAt })),
      restartToFirstTryMs: first.startedAt - restartedAt,
      restartToObservedUpMs: observedAt - restartedAt,
      stderr: Object.fromEntries(events.counts),
    };
    return [
      {
        key: 'recovery.flush1000Ms',
        value: flushMs,
        unit: 'ms',
        target: { op: '<=', value: 250 },
        note: `${commits.length} commits (${commits.map((c) => c.rows).join('+')} rows); first try ${(first.startedAt - restartedAt).toFixed(0)} ms after restart`,
      },
    ];
  } finally {
    await app.close().finally(restore);
  }
}
