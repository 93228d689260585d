import { type KeyObject } from 'node:crypto';
import { quoteTablePath } from '../audit-insert-sql';
import { type Seal } from '../integrity/seal';
import { SEALER_LOCK, sealTableOf } from '../integrity/seal-store';
import { PIN_SEARCH_PATH_SQL } from '../integrity/search-path';
import { appendCheckpoint, coveredText, removalBlocker } from './checkpoint-append';
import { legacyDecision } from './legacy-retention';
import { retentionErasures } from './checkpoint-erasures';
import { checkMonthLocked, type Query, sealHeads } from './month-analysis';
import { analyzeMonthInParts } from './month-chunks';
import { withLockRetries } from './lock-retries';
import { monthStart, partitionLayout } from './month-partitions';

/**
 * What retention did, or in a dry run would do, with one partition.
 *
 * @example
 * const decisions: MonthDecision[] = await app.get(AuditRetention).retainNow();
 * const retired = decisions.filter((d) => d.action === 'retired').map((d) => d.month);
 */
export interface MonthDecision {
  /** `YYYY-MM`, or `legacy` / `default` for those partitions. */
  month: string;
  partition: string;
  action: 'retired' | 'would retire' | 'kept' | 'gone' | 'failed';
  /** Why it stays (or what failed); for a month that goes, its rows and the seals that covered them. */
  reason: string;
  rows?: number;
  /** The checkpoint recording the removal (not in a dry run). */
  checkpoint?: Seal;
}

/** How retention runs: the window, the legal hold, and whether it only says what it would do. */
export interface RetentionRun {
  /** The audit table with its schema (`public.audit_log`). */
  table: string;
  months: number;
  legalHold: readonly string[];
  dryRun: boolean;
  /** Signs each checkpoint; required when the newest seal is signed. */
  signingKey: KeyObject | null;
  /** Statement and lock timeout of each month's transaction (ms): each part of a month's check is a statement within it. */
  timeoutMs?: number;
  /** The seals whose rows the first part of a month's check takes (later parts are sized by the time each took). */
  firstPartSeals?: number;
  /** Called after each checkpoint commits (the `audit.retained` line). */
  retained?: (checkpoint: Seal) => void;
  /**
   * Called before a month goes (not in a dry run): archives it (`audit-retention --archive-dir`).
   * A decision returned keeps the month, with its reason; `archivedRows` lets it go if it still
   * holds exactly that many rows when it is retired (a row that came since is in no archive).
   */
  archive?: (month: string) => Promise<{ action: 'kept' | 'failed'; reason: string } | { archivedRows: number }>;
  /** Removes the legacy partition too once its bound leaves the window (`audit-retention --legacy`). */
  legacy?: boolean;
  now?: number;
}

/** A connection retention runs on: its statements, one transaction at a time. */
export interface RetentionSession {
  query: Query;
}

/**
 * Applies retention once (see docs/LIFECYCLE.md): every monthly partition of the audit table that
 * ended at least `months` whole months before the current one (UTC), is not under legal hold and
 * whose rows are all sealed, is removed, oldest first, each in its own transaction: a retention
 * checkpoint is chained after the newest seal (signed with `signingKey`), then the database's
 * `audit_log_retire_month()` checks again and detaches and drops the partition. The legacy
 * partition goes whole, the same way, only with `legacy` (see `legacy-retention.ts`); the default
 * partition is never removed. Returns one decision per partition, with the reason each
 * stays. A dry run only reads.
 *
 * @example
 * const query = async (sql: string, parameters?: unknown[]) => (await client.query(sql, parameters)).rows;
 * const decisions = await applyRetention({ query }, { table: 'public.audit_log', months: 72, legalHold: [], dryRun: true, signingKey: null });
 */
export async function applyRetention(session: RetentionSession, run: RetentionRun): Promise<MonthDecision[]> {
  const { query } = session;
  const sealTable = sealTableOf(run.table);
  const now = new Date(run.now ?? Date.now());
  const current = `${now.toISOString().slice(0, 7)}`;
  const cutoff = monthStart(current, -run.months);
  const cutoffMonth = new Date(cutoff).toISOString().slice(0, 7);
  await query(`BEGIN; ${PIN_SEARCH_PATH_SQL}`);
  let layout;
  try {
    layout = await partitionLayout(query, run.table);
  } finally {
    await query('ROLLBACK');
  }
  const decisions: MonthDecision[] = [];
  if (layout.legacyUntil !== null) decisions.push(await legacyDecision(query, sealTable, run, layout.legacyUntil, cutoff));
  for (const { name, month } of layout.months) {
    const decision = (action: MonthDecision['action'], reason: string, more: Partial<MonthDecision> = {}) =>
      decisions.push({ month, partition: name, action, reason, ...more });
    if (run.legalHold.includes(month)) {
      decision('kept', 'legal hold');
      continue;
    }
    if (monthStart(month, 1) > cutoff) {
      decision('kept', `within the retention window (${run.months} months: only months before ${cutoffMonth} go)`);
      continue;
    }
    try {
      const archived = run.dryRun || !run.archive ? null : await run.archive(month);
      if (archived && 'action' in archived) {
        decision(archived.action, archived.reason);
        continue;
      }
      const outcome = await withLockRetries(() => retireMonth(query, sealTable, run, month, name, archived?.archivedRows));
      decision(outcome.action, outcome.reason, { rows: outcome.rows, checkpoint: outcome.checkpoint });
      if (outcome.checkpoint) run.retained?.(outcome.checkpoint);
    } catch (error) {
      const { code, message } = error as { code?: string; message: string };
      decision('failed', `${code ?? 'error'}: ${message}`);
    }
  }
  for (const name of layout.others) {
    decisions.push({ month: 'other', partition: name, action: 'kept', reason: 'not a monthly partition: never removed by retention' });
  }
  if (layout.hasDefault) {
    decisions.push({
      month: 'default',
      partition: 'audit_log_default',
      action: 'kept',
      reason: 'the default partition is never removed by retention (its rows move to their month when its partition is made)',
    });
  }
  return decisions;
}

/** One month, in its own transaction, with the sealer's lock held so that no seal is made meanwhile. */
async function retireMonth(
  query: Query,
  sealTable: string,
  run: RetentionRun,
  month: string,
  partition: string,
  archivedRows?: number,
): Promise<{ action: MonthDecision['action']; reason: string; rows?: number; checkpoint?: Seal }> {
  const timeoutMs = run.timeoutMs ?? 30_000;
  // The month's check (month-check-sql.ts) with the settings audit_log_retire_month pins: it joins a month of rows with manifests.
  // A dry run reads it in parts without a lock: one snapshot for all of them.
  await query(
    `BEGIN${run.dryRun ? ' ISOLATION LEVEL REPEATABLE READ' : ''}; SET LOCAL statement_timeout = '${timeoutMs}ms'; SET LOCAL lock_timeout = '${timeoutMs}ms'; SET LOCAL work_mem = '64MB'; SET LOCAL enable_nestloop = off; SET LOCAL enable_mergejoin = off; ${PIN_SEARCH_PATH_SQL}`,
  );
  try {
    await query(`SELECT pg_catalog.pg_advisory_xact_lock(${SEALER_LOCK})`);
    // Another instance (or command) may have removed the month since the partitions were listed.
    const [{ attached }] = await query(
      `SELECT EXISTS (SELECT FROM pg_catalog.pg_inherits AS h JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) h.inhrelid
         WHERE h.inhparent OPERATOR(pg_catalog.=) $1::pg_catalog.regclass AND c.relname OPERATOR(pg_catalog.=) $2) AS attached`,
      [quoteTablePath(run.table), partition],
    );
    if (!attached) {
      await query('ROLLBACK');
      return { action: 'gone', reason: 'removed meanwhile by another run (its checkpoint is in the chain)' };
    }
    const heads = await sealHeads(query, sealTable);
    const from = new Date(monthStart(month)).toISOString();
    const to = new Date(monthStart(month, 1)).toISOString();
    // A removal has the database check the month under its lock, once; a dry run reads it without locking.
    // Either reads it in parts, each a statement within the timeout, however big the month.
    const bounds = { timeoutMs, firstSeals: run.firstPartSeals, monthStart: monthStart(month) };
    const checked = run.dryRun ? null : await checkMonthLocked(query, run.table, heads, month, bounds);
    const analysis = checked?.analysis ?? (await analyzeMonthInParts(query, { table: run.table, sealTable, from, to }, heads, bounds));
    const blocker = removalBlocker(analysis, heads.length, archivedRows);
    if (blocker !== null) {
      await query('ROLLBACK');
      return { action: 'kept', reason: blocker, rows: analysis.rows };
    }
    const covered = coveredText(analysis);
    if (run.dryRun) {
      await query('ROLLBACK');
      return { action: 'would retire', reason: covered, rows: analysis.rows };
    }
    const erasures = checked?.erasures ?? (await retentionErasures(query, run.table, month));
    const mark = { month, rows: analysis.rows, covered: analysis.covered?.hash ?? null, erasures };
    const checkpoint = await appendCheckpoint(query, sealTable, run, analysis, mark, `${month}-01`);
    const schema = run.table.slice(0, run.table.lastIndexOf('.'));
    await query(`SELECT ${quoteTablePath(schema)}.audit_log_retire_month($1::date, $2::integer)`, [`${month}-01`, run.months]);
    await query('COMMIT');
    return { action: 'retired', reason: `${covered}; checkpoint seal ${checkpoint.seq}`, rows: analysis.rows, checkpoint };
  } catch (error) {
    await query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
