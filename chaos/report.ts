import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type ChaosResult } from './schedule';

/**
 * The one-line verdict of a run.
 *
 * @example
 * summaryLine(result);
 * // 'chaos: 5120 acknowledged, 5120 recorded, 0 missing, 0 duplicated, faults: kill-db, …; peak pending: sync 412, …; peak RSS: sync 98 MiB, …; integrity: verify clean (5120 rows, 31 seals, 31 witness lines, entry key checked: 5120 rows authentic)'
 */
export function summaryLine(result: ChaosResult): string {
  const peaks = Object.entries(result.peaks).sort(([a], [b]) => b.localeCompare(a));
  return (
    `chaos: ${result.acknowledged} acknowledged, ${result.recorded} recorded, ${result.missing} missing, ` +
    `${result.duplicated} duplicated, faults: ${result.faults.join(', ')}; ` +
    `peak pending: ${peaks.map(([app, p]) => `${app} ${p.pending}`).join(', ')}; ` +
    `peak RSS: ${peaks.map(([app, p]) => `${app} ${(p.rssBytes / 2 ** 20).toFixed(0)} MiB`).join(', ')}; ` +
    integrityVerdict(result)
  );
}

function integrityVerdict({ integrity: i }: ChaosResult): string {
  if (i.clean) {
    return `integrity: verify clean (${i.rowsVerified} rows, ${i.sealsVerified} seals, ${i.witnessed} witness lines, entry key checked: ${i.rowsAuthentic} rows authentic)`;
  }
  const kinds = Object.entries(i.anomalies).map(([kind, n]) => `${kind} ${n}`);
  const unauthenticated = `${i.rowsVerified - i.rowsAuthentic} sealed rows not authentic`;
  return `integrity: verify NOT clean (${[...kinds, `${i.rowsUnsealed} rows unsealed`, unauthenticated].join(', ')})`;
}

/**
 * The per-phase table: requests sent and acknowledged, latency of the acknowledged ones, and the
 * audit event lines the apps printed during the phase.
 *
 * @example
 * console.log(phaseTable(result));
 */
export function phaseTable(result: ChaosResult): string {
  const header = ['phase', 'sent', 'acked', 'not acked', 'p50 ms', 'p99 ms', 'max ms', 'audit events'];
  const rows = result.phases.map((p) => [
    p.phase,
    String(p.sent),
    String(p.acknowledged),
    String(p.notAcknowledged),
    p.p50Ms.toFixed(1),
    p.p99Ms.toFixed(1),
    p.maxMs.toFixed(1),
    Object.entries(p.events)
      .map(([event, n]) => `${event} ${n}`)
      .join(', '),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/**
 * Writes the result as JSON (the summary line included) to `path`.
 *
 * @example
 * writeResult('chaos/results/latest.json', result);
 */
export function writeResult(path: string, result: ChaosResult): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify({ summary: summaryLine(result), ...result }, null, 2)}\n`);
}
