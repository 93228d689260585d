import { type Client } from 'pg';
import { decodeRetained, mergeRetained, type RetainedRows } from '../lifecycle/checkpoint';
import { legacyBoundOf, retentionMonthSql } from '../lifecycle/legacy-range';
import { type Query } from '../lifecycle/month-analysis';
import { monthStart, monthOf, partitionLayout } from '../lifecycle/month-partitions';
import { type Anomaly } from './verifier';

/** What the retention checkpoints of a trail say: the rows removed, by seal, and the months. */
export interface RetentionFindings {
  checkpoints: number;
  /** Months removed by retention, `YYYY-MM`, oldest first. */
  months: string[];
  /** Rows the checkpoints count as removed. */
  rows: number;
  retained: RetainedRows;
}

/** A `pg` client as a {@link Query}. */
function queryOf(client: Client): Query {
  return async (sql, parameters) => (await client.query(sql, parameters)).rows as Record<string, unknown>[];
}

/**
 * Reads every retention checkpoint's manifest (one bit per row of each seal that covered its
 * month), before the seals' rows are checked: a row a checkpoint removed is not missing. Only a
 * row that seals no row and ends where the seal before it ends counts as one (a seal changed to
 * look like one is checked as a seal). The checkpoints themselves are checked in the chain like
 * seals (hash, chain, signature, witness).
 *
 * @example
 * const retention = await loadRetention(client, 'public.audit_seal');
 */
export async function loadRetention(client: Client, sealTable: string): Promise<RetentionFindings> {
  const rows = await queryOf(client)(
    `SELECT s.manifest, ${retentionMonthSql('s.retention_month')} AS month, s.retention_rows::text AS rows
     FROM ${sealTable} AS s JOIN ${sealTable} AS p ON p.seq OPERATOR(pg_catalog.=) (s.seq OPERATOR(pg_catalog.-) 1)
     WHERE s.retention_month IS NOT NULL AND s.row_count OPERATOR(pg_catalog.=) 0
       AND p.last_tx IS NOT DISTINCT FROM s.last_tx AND p.last_id OPERATOR(pg_catalog.=) s.last_id
     ORDER BY s.seq`,
  );
  const findings: RetentionFindings = { checkpoints: 0, months: [], rows: 0, retained: new Map() };
  for (const row of rows) {
    findings.checkpoints += 1;
    findings.months.push(row.month as string);
    findings.rows += Number(row.rows);
    mergeRetained(findings.retained, decodeRetained(row.manifest as Buffer));
  }
  findings.months.sort();
  return findings;
}

/**
 * Names each month that was dropped without a checkpoint (`month_dropped`): a month inside the
 * series of monthly partitions (from the legacy partition's bound to the newest partition) that
 * has neither a partition nor a retention checkpoint, while sealed rows are missing. A month
 * never given a partition (its rows in the default partition) with nothing missing is no finding.
 *
 * @example
 * await checkMonths(client, 'public.audit_log', retention, missingRows, (a) => found.push(a));
 */
export async function checkMonths(
  client: Client,
  table: string,
  retention: RetentionFindings,
  missingRows: number,
  add: (a: Anomaly) => void,
): Promise<void> {
  if (missingRows === 0) return;
  const layout = await partitionLayout(queryOf(client), table);
  if (!layout.partitioned) return;
  const present = new Set(layout.months.map((m) => m.month));
  // The legacy partition's checkpoint names its range (`legacy..YYYY-MM`); the partition migration made one on every install.
  const legacyBound = retention.months.map(legacyBoundOf).find((bound) => bound !== null) ?? null;
  if (layout.legacyUntil === null && legacyBound === null) {
    add({
      kind: 'month_dropped',
      month: 'legacy',
      detail: `audit_log has no legacy partition (FROM (MINVALUE)) and no retention checkpoint records its removal, while ${missingRows} sealed rows are missing (each named row_missing): dropped without a checkpoint`,
    });
  }
  const known = [...present, ...retention.months.filter((month) => legacyBoundOf(month) === null)].sort();
  const first = layout.legacyUntil ?? legacyBound ?? known[0];
  const last = layout.months.at(-1)?.month;
  if (first === undefined || last === undefined) return;
  for (let at = monthStart(first); at <= monthStart(last); at = monthStart(monthOf(at), 1)) {
    const month = monthOf(at);
    if (present.has(month) || retention.months.includes(month)) continue;
    add({
      kind: 'month_dropped',
      month,
      detail: `audit_log has no partition for it and no retention checkpoint records it, while ${missingRows} sealed rows are missing (each named row_missing): dropped without a checkpoint`,
    });
  }
}
