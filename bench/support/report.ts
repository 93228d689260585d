import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** One line of the summary table; `value` null means "not measured" (the reason is in `note`). */
export interface Figure {
  key: string;
  value: number | null;
  unit: string;
  target?: { op: '>=' | '<='; value: number };
  note?: string;
}

/** Whether `figure` meets its target: `undefined` when it has none or was not measured. */
export function met(figure: Figure): boolean | undefined {
  if (!figure.target || figure.value === null) return undefined;
  return figure.target.op === '>=' ? figure.value >= figure.target.value : figure.value <= figure.target.value;
}

/**
 * Prints the table of all figures: name, value, target, met.
 *
 * @example
 * printTable([{ key: 'throughput.ratioVsRaw', value: 0.62, unit: '×', target: { op: '>=', value: 0.5 } }]);
 */
export function printTable(figures: readonly Figure[]): void {
  const rows = figures.map((f) => {
    const ok = met(f);
    return [
      f.key,
      f.value === null ? 'n/a' : `${format(f.value)}${f.unit ? ` ${f.unit}` : ''}`,
      f.target ? `${f.target.op} ${f.target.value}` : '',
      ok === undefined ? (f.target ? 'n/a' : '') : ok ? 'yes' : 'NO',
      f.note ?? '',
    ];
  });
  const header = ['figure', 'value', 'target', 'met', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join(' | ');
  console.log(`\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('-|-')}`);
  for (const row of rows) console.log(line(row));
}

/**
 * Writes the figures as `{ "throughput": { "rawPgPerSec": … }, … }` plus `meta` and `details`.
 *
 * @example
 * writeResults('bench/results/latest.json', figures, { node: process.version }, {});
 */
export function writeResults(file: string, figures: readonly Figure[], meta: object, details: object): void {
  const out: Record<string, Record<string, number | null>> = {};
  for (const f of figures) {
    const [group, name] = f.key.split('.');
    (out[group] ??= {})[name] = f.value === null ? null : Number(format(f.value));
  }
  const targets = figures
    .filter((f) => f.target)
    .map((f) => ({ key: f.key, target: `${f.target?.op} ${f.target?.value}`, met: met(f) ?? null }));
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ ...out, targets, meta, details }, null, 2)}\n`);
}

function format(value: number): string {
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2);
}
