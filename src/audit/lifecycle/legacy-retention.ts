import { quoteTablePath } from '../audit-insert-sql';
import { type Seal } from '../integrity/seal';
import { SEALER_LOCK } from '../integrity/seal-store';
import { PIN_SEARCH_PATH_SQL } from '../integrity/search-path';
import { appendCheckpoint, coveredText, removalBlocker } from './checkpoint-append';
import { erasuresSql } from './checkpoint-erasures';
import { legacyMark } from './legacy-range';
import { withLockRetries } from './lock-retries';
import { checkMonthLocked, type Query, sealHeads } from './month-analysis';
import { analyzeMonthInParts } from './month-chunks';
import { monthOf, monthStart } from './month-partitions';
import { type MonthDecision, type RetentionRun } from './retention';

/** The legacy partition's name, as the partition migration makes it. */
const LEGACY_PARTITION = 'audit_log_legacy';

/**
 * What retention does with the legacy partition (`FROM (MINVALUE) TO (<bound>)`, docs/LIFECYCLE.md):
 * it stays while its bound (`YYYY-MM`) is after `cutoff` (the window), while a legal-hold month
 * falls inside its range, unless the run asks for it (`run.legacy`: `audit-retention --legacy`, `retention.legacy`),
 * when its archive (`run.archive`, first) fails or does not verify, and when the role may not run
 * `audit_log_retire_legacy()`. Otherwise, as a month: in its own transaction with the sealer's
 * lock, when every row in it is one a seal sealed (checked in parts, each a statement within
 * `run.timeoutMs`: by the database's `audit_log_check_legacy`, locked, where the role may run it),
 * a checkpoint naming the range (`legacy..YYYY-MM`) is chained and signed, then the database's
 * function checks it against the parts' result and detaches and drops it; tried again when a lock
 * is taken. A dry run only reads, in parts too.
 *
 * @example
 * decisions.push(await legacyDecision(query, 'public.audit_seal', run, layout.legacyUntil, cutoff));
 */
export async function legacyDecision(
  query: Query,
  sealTable: string,
  run: RetentionRun,
  bound: string,
  cutoff: number,
): Promise<MonthDecision> {
  const decision = (action: MonthDecision['action'], reason: string, more: Partial<MonthDecision> = {}): MonthDecision => ({
    month: 'legacy',
    partition: LEGACY_PARTITION,
    action,
    reason,
    ...more,
  });
  const range = `rows before ${bound}`;
  if (monthStart(bound) > cutoff) {
    const cutoffMonth = monthOf(cutoff);
    return decision(
      'kept',
      `the legacy partition (${range}) is within the retention window (${run.months} months: only rows before ${cutoffMonth} go)`,
    );
  }
  const held = run.legalHold.filter((month) => month < bound);
  if (held.length > 0) return decision('kept', `legal hold: ${held.join(', ')} inside the legacy partition (${range})`);
  if (!run.legacy) {
    return decision(
      'kept',
      `the legacy partition (${range}) is out of the window; it goes whole only when asked (audit-retention --legacy, or the option retention.legacy)`,
    );
  }
  const schema = quoteTablePath(run.table.slice(0, run.table.lastIndexOf('.')));
  const [{ usable }] = await query(
    `SELECT pg_catalog.has_function_privilege(pg_catalog.to_regprocedure($1), 'EXECUTE') IS TRUE AS usable`,
    [`${schema}.audit_log_retire_legacy(integer)`],
  );
  if (!usable) {
    return decision(
      'kept',
      `this role may not run ${schema}.audit_log_retire_legacy(integer) (migration AuditRetireLegacy1766500000000; run as the table's owner, or GRANT EXECUTE to this role)`,
    );
  }
  try {
    // Archived first (audit-retention --archive-dir), as a month: it goes only while it holds the rows its archive holds.
    const archived = run.dryRun || !run.archive ? null : await run.archive(legacyMark(bound));
    if (archived && 'action' in archived) return decision(archived.action, archived.reason);
    const outcome = await withLockRetries(() => retireLegacy(query, sealTable, run, bound, archived?.archivedRows));
    if (outcome.checkpoint) run.retained?.(outcome.checkpoint);
    return decision(outcome.action, outcome.reason, { rows: outcome.rows, checkpoint: outcome.checkpoint });
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    return decision('failed', `${code ?? 'error'}: ${message}`);
  }
}

/** The legacy partition, in its own transaction, with the sealer's lock held so that no seal is made meanwhile. */
async function retireLegacy(
  query: Query,
  sealTable: string,
  run: RetentionRun,
  bound: string,
  archivedRows?: number,
): Promise<{ action: MonthDecision['action']; reason: string; rows?: number; checkpoint?: Seal }> {
  const timeoutMs = run.timeoutMs ?? 30_000;
  // A dry run reads the range in parts without a lock: one snapshot for all of them.
  await query(
    `BEGIN${run.dryRun ? ' ISOLATION LEVEL REPEATABLE READ' : ''}; SET LOCAL statement_timeout = '${timeoutMs}ms'; SET LOCAL lock_timeout = '${timeoutMs}ms'; SET LOCAL work_mem = '64MB'; SET LOCAL enable_nestloop = off; SET LOCAL enable_mergejoin = off; ${PIN_SEARCH_PATH_SQL}`,
  );
  try {
    await query(`SELECT pg_catalog.pg_advisory_xact_lock(${SEALER_LOCK})`);
    const to = new Date(monthStart(bound)).toISOString();
    // Another run may have removed it since the partitions were listed.
    const [{ attached }] = await query(
      `SELECT EXISTS (SELECT FROM pg_catalog.pg_inherits AS h JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) h.inhrelid
         WHERE h.inhparent OPERATOR(pg_catalog.=) $1::pg_catalog.regclass
           AND pg_catalog.pg_get_expr(c.relpartbound, c.oid) LIKE 'FOR VALUES FROM (MINVALUE) TO (%') AS attached`,
      [quoteTablePath(run.table)],
    );
    if (!attached) {
      await query('ROLLBACK');
      return { action: 'gone', reason: 'removed meanwhile by another run (its checkpoint is in the chain)' };
    }
    const heads = await sealHeads(query, sealTable);
    // As a month: a removal has the database check the range under its lock, in parts (then audit_log_retire_legacy reads it no more);
    // a dry run, or a role without the check's grant, reads it in parts itself.
    const bounds = { timeoutMs, firstSeals: run.firstPartSeals };
    const checked = run.dryRun ? null : await checkMonthLocked(query, run.table, heads, bound, bounds, 'audit_log_check_legacy');
    const analysis =
      checked?.analysis ?? (await analyzeMonthInParts(query, { table: run.table, sealTable, from: '-infinity', to }, heads, bounds));
    const blocker = removalBlocker(analysis, heads.length, archivedRows);
    if (blocker !== null) {
      await query('ROLLBACK');
      return { action: 'kept', reason: blocker, rows: analysis.rows };
    }
    const covered = coveredText(analysis);
    if (run.dryRun) {
      await query('ROLLBACK');
      return { action: 'would retire', reason: `${covered} (rows before ${bound})`, rows: analysis.rows };
    }
    const carried =
      checked?.erasures ??
      (
        await query(`SELECT (${erasuresSql(`${quoteTablePath(run.table)} AS l WHERE l.occurred_at < $1::timestamptz`)})::text AS carried`, [
          to,
        ])
      )[0].carried;
    const mark = { month: legacyMark(bound), rows: analysis.rows, covered: analysis.covered?.hash ?? null, erasures: carried as string };
    // The last day before the bound: a month's checkpoint holds a first day.
    const lastDay = new Date(monthStart(bound) - 86_400_000).toISOString().slice(0, 10);
    const checkpoint = await appendCheckpoint(query, sealTable, run, analysis, mark, lastDay);
    await query(`SELECT ${quoteTablePath(run.table.slice(0, run.table.lastIndexOf('.')))}.audit_log_retire_legacy($1::integer)`, [
      run.months,
    ]);
    await query('COMMIT');
    return {
      action: 'retired',
      reason: `${covered} (rows before ${bound}); checkpoint seal ${checkpoint.seq}`,
      rows: analysis.rows,
      checkpoint,
    };
  } catch (error) {
    await query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
