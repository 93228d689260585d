import { type Client } from 'pg';
import { quoteTablePath } from '../audit-insert-sql';
import { sealTableOf } from '../integrity/seal-store';
import { type Anomaly } from '../integrity/verifier';
import { type RetainedErasures } from '../lifecycle/checkpoint-erasures';
import { monthOf } from '../lifecycle/month-partitions';
import { ERASURE_ACTION } from './erasure';
import { personalVerdict } from './personal-verdict';
import { parsePersonal } from './personal-values';

/** What `audit-verify` found of erasure: rows erased, and the `audit_erasure` entries they are erased under. */
export interface ErasureReport {
  erasedRows: number;
  erasureEntries: number;
  /** Erased rows the retention checkpoints removed (carried forward by them). */
  retiredRows?: number;
  /** `audit_erasure` entries the retention checkpoints removed. */
  retiredEntries?: number;
  /** `audit_erasure` entries made under a pseudonym key not given: whether their subject's rows were all taken is not checked. */
  uncheckedEntries?: number;
}

/**
 * What the verifier selects of each row, after its other columns: for a row with commitments
 * (row encoding version 2), or with `personal` (planted: the module writes none without
 * commitments), its actor columns, `personal` and `commitments`, then its entity and the
 * `[type, id]` of each change in its `changes.entities` (for the erasure coverage check), as one
 * JSON text; NULL for any other row.
 */
export const PERSONAL_CHECK_SQL = `, CASE WHEN l.commitments IS NULL AND l.personal IS NULL THEN NULL ELSE pg_catalog.json_build_array(l.user_id, l.ip, l.user_agent, l.personal, l.commitments, l.entity_type, l.entity_id, CASE WHEN pg_catalog.jsonb_typeof(l.changes -> 'entities') OPERATOR(pg_catalog.=) 'array' THEN (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(e ->> 'type', e ->> 'id')) FROM pg_catalog.jsonb_array_elements(l.changes -> 'entities') AS e) END)::text END`;

/**
 * The verifier's checks of personal values (docs/PRIVACY.md). A row's seal and entry code cover
 * the commitments, not the values: here each value still present must match its commitment
 * (`row_personal_changed` otherwise), an erased row must hold nothing but the erased marker, and
 * each erasure must be recorded by an `audit_erasure` entry that counts its rows
 * (`row_erased_unaccounted` otherwise).
 *
 * @example
 * const personal = new PersonalChecks();
 * const anomaly = personal.judge(id, text); // for each row, `text` selected with PERSONAL_CHECK_SQL
 * await personal.finish(client, 'public.audit_log', add);
 */
export class PersonalChecks {
  readonly report: ErasureReport = { erasedRows: 0, erasureEntries: 0 };
  /** Erased rows by the erasure that claims them. */
  private readonly erased = new Map<string, string[]>();
  /** Rows whose `personal` is an erasure's marker, by that erasure, whatever their values (a value changed too). */
  private readonly marked = new Map<string, string[]>();
  /** Erased rows by the erasure that claims them, each with its month of `occurred_at` and its `tx` (rows judged with it). */
  private readonly erasedMonths = new Map<string, { month: string; tx: bigint | null }[]>();

  /**
   * Judges one row from its {@link PERSONAL_CHECK_SQL} text; returns the anomaly of a value
   * changed. `occurredUs`, the row's `occurred_at` in µs as an archive holds it, counts an erased
   * row by its month too ({@link erasedByMonth}), with its `tx`.
   */
  judge(id: string, text: unknown, occurredUs?: string | null, tx: bigint | null = null): Anomaly | null {
    if (text === null || text === undefined) return null;
    const problem = this.problemOf(id, text as string, occurredUs, tx);
    return problem ? { kind: 'row_personal_changed', row: id, detail: problem } : null;
  }

  /**
   * The rows judged erased under `erasure`, by month (`YYYY-MM`, UTC) of their `occurred_at`
   * (only rows judged with it), and of those only the rows whose `tx` `counts` accepts.
   *
   * @example
   * personal.erasedByMonth(erasureId).get('2026-01'); // 2
   * personal.erasedByMonth(erasureId, (tx: bigint | null) => tx === null || tx < 812n).get('2026-01'); // 0 when both were written at or after tx 812
   */
  erasedByMonth(erasure: string, counts: (tx: bigint | null) => boolean = () => true): ReadonlyMap<string, number> {
    const byMonth = new Map<string, number>();
    for (const row of this.erasedMonths.get(erasure) ?? []) {
      if (counts(row.tx)) byMonth.set(row.month, (byMonth.get(row.month) ?? 0) + 1);
    }
    return byMonth;
  }

  /**
   * The ids of the rows judged that carry the marker of `erasure`, a row whose value was changed
   * too (named `row_personal_changed`) among them: the rows an erasure's rewrite marked.
   *
   * @example
   * personal.erasedIds(erasureId); // ['0190…', '0191…']
   */
  erasedIds(erasure: string): readonly string[] {
    return this.marked.get(erasure) ?? [];
  }

  private problemOf(id: string, text: string, occurredUs: string | null | undefined, tx: bigint | null): string | null {
    const [userId, ip, userAgent, personalText, commitmentsText] = JSON.parse(text) as (string | null)[];
    const marker = parsePersonal(personalText);
    if (marker && 'erased' in marker) {
      const ids = this.marked.get(marker.erased) ?? [];
      ids.push(id);
      this.marked.set(marker.erased, ids);
    }
    const verdict = personalVerdict([userId, ip, userAgent], personalText, commitmentsText);
    if ('problem' in verdict) return verdict.problem;
    if (verdict.erasure !== null) {
      this.erased.set(verdict.erasure, [...(this.erased.get(verdict.erasure) ?? []), id]);
      this.report.erasedRows += 1;
      const month = occurredUs === undefined ? null : monthOfMicros(occurredUs);
      if (month !== null) {
        const rows = this.erasedMonths.get(verdict.erasure) ?? [];
        rows.push({ month, tx });
        this.erasedMonths.set(verdict.erasure, rows);
      }
    }
    return null;
  }

  /**
   * Matches the erased rows with the `audit_erasure` entries (read in the verifier's snapshot),
   * adding what the retention checkpoints carried forward of the months they removed (erased rows
   * and entries, covered by each checkpoint's hash and checked by the database when it dropped the
   * month): for each erasure, rows present plus rows retired must be exactly the count of its
   * entries. Rows of an erasure no entry records, and rows of an erasure that does not add up, are
   * each named (its entry is named instead when none of its rows is left). While a checkpoint made
   * before checkpoints carried erasures is in the chain, an erasure with fewer rows than its count
   * is not named: that checkpoint may have removed the others. Only an authentic entry counts: the
   * ids in `forged` (rows named `row_forged`) record nothing. `whole` says every row was judged;
   * a check of some seals only cannot tell an erasure short of rows, and does not name one.
   */
  async finish(
    client: Client,
    table: string,
    add: (a: Anomaly) => void,
    { forged = new Set<string>(), whole = true }: { forged?: ReadonlySet<string>; whole?: boolean } = {},
  ): Promise<void> {
    const { rows } = await client.query<{ id: string; erasure: string | null; count: string | null }>(
      `SELECT l.id::text AS id, l.changes -> 'erasure' ->> 'id' AS erasure, l.changes -> 'erasure' ->> 'rows' AS count
       FROM ${quoteTablePath(table)} AS l WHERE l.action OPERATOR(pg_catalog.=) $1`,
      [ERASURE_ACTION],
    );
    const authentic = rows.filter((row) => !forged.has(row.id));
    this.report.erasureEntries = authentic.length;
    const counted = new Map<string, number>();
    const entryRows = new Map<string, string[]>();
    for (const row of authentic) {
      if (row.erasure === null) continue;
      counted.set(row.erasure, (counted.get(row.erasure) ?? 0) + wholeCount(row.count));
      entryRows.set(row.erasure, [...(entryRows.get(row.erasure) ?? []), row.id]);
    }
    const carried = await carriedErasures(client, sealTableOf(table));
    const retired = new Map<string, number>();
    for (const [erasure, n] of carried.erased) {
      retired.set(erasure, n);
      this.report.retiredRows = (this.report.retiredRows ?? 0) + n;
    }
    for (const [erasure, n] of carried.entries) {
      counted.set(erasure, (counted.get(erasure) ?? 0) + n);
      this.report.retiredEntries = (this.report.retiredEntries ?? 0) + 1;
    }
    for (const erasure of new Set([...this.erased.keys(), ...retired.keys(), ...counted.keys()])) {
      const ids = this.erased.get(erasure) ?? [];
      const gone = retired.get(erasure) ?? 0;
      const count = counted.get(erasure);
      const also = gone > 0 ? ` (and ${gone} retired)` : '';
      if (count === undefined) {
        for (const id of ids) {
          add({
            kind: 'row_erased_unaccounted',
            row: id,
            detail: `erased under erasure ${erasure}${also}, which no ${ERASURE_ACTION} entry records`,
          });
        }
        continue;
      }
      const total = ids.length + gone;
      if (total === count || (total < count && (carried.legacy || !whole))) continue;
      const detail =
        total < count && ids.length === 0
          ? `${total} rows carry the marker of erasure ${erasure}${also}, whose ${ERASURE_ACTION} entry counts ${count}: an erased row was written back or removed`
          : `one of ${ids.length} rows erased under erasure ${erasure}${also}, whose ${ERASURE_ACTION} entry counts ${count}`;
      const named = ids.length > 0 ? ids : (entryRows.get(erasure) ?? []);
      for (const id of named) add({ kind: 'row_erased_unaccounted', row: id, detail });
      if (named.length === 0)
        add({
          kind: 'row_erased_unaccounted',
          detail: `${total} rows erased under erasure ${erasure}, all retired, whose retired ${ERASURE_ACTION} entry counts ${count}`,
        });
    }
  }
}

/** `YYYY-MM` (UTC) of an `occurred_at` in µs as text, or null when it is no instant. */
function monthOfMicros(us: string | null): string | null {
  const ms = us === null || !/^-?[0-9]{1,18}$/.test(us) ? NaN : Math.floor(Number(us) / 1000);
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? monthOf(ms) : null;
}

/** An entry's count of rows erased: a whole number, else 0 (as `audit_log_retire_month` reads it). */
function wholeCount(text: string | null): number {
  return text !== null && /^[0-9]{1,15}$/.test(text) ? Number(text) : 0;
}

/**
 * What the retention checkpoints carried forward of erasures (`retention_erasures`), summed per
 * erasure; `legacy` when a checkpoint in the chain records none (made before they were carried).
 */
async function carriedErasures(
  client: Client,
  sealTable: string,
): Promise<{ erased: Map<string, number>; entries: Map<string, number>; legacy: boolean }> {
  const { rows } = await client.query<{ erasures: string | null }>(
    `SELECT s.retention_erasures AS erasures FROM ${sealTable} AS s WHERE s.retention_month IS NOT NULL AND s.row_count OPERATOR(pg_catalog.=) 0 ORDER BY s.seq`,
  );
  const carried = { erased: new Map<string, number>(), entries: new Map<string, number>(), legacy: false };
  for (const row of rows) {
    let value: Partial<RetainedErasures> | null = null;
    try {
      value = row.erasures === null ? null : (JSON.parse(row.erasures) as Partial<RetainedErasures>);
    } catch {
      // Changed by hand: the checkpoint's hash names it.
    }
    if (!value) {
      carried.legacy = true;
      continue;
    }
    for (const [erasure, n] of Object.entries(value.erased ?? {})) {
      if (typeof n === 'number') carried.erased.set(erasure, (carried.erased.get(erasure) ?? 0) + n);
    }
    for (const [erasure, entry] of Object.entries(value.entries ?? {})) {
      if (typeof entry?.rows === 'number') carried.entries.set(erasure, (carried.entries.get(erasure) ?? 0) + entry.rows);
    }
  }
  return carried;
}

/**
 * The `erasure:` line of `audit-verify`: rows erased and erasure entries in the trail, and those
 * the retention checkpoints carried forward.
 *
 * @example
 * erasureLine({ erasedRows: 3, erasureEntries: 1, retiredRows: 2 }); // 'erasure: 3 rows erased under 1 erasure entries (and 2 erased rows retired)'
 */
export function erasureLine(report: ErasureReport): string {
  const retired = [
    report.retiredRows ? `${report.retiredRows} erased rows` : '',
    report.retiredEntries ? `${report.retiredEntries} erasure entries` : '',
  ].filter((part) => part !== '');
  const unchecked = report.uncheckedEntries
    ? `; ${report.uncheckedEntries} erasure entries made under a pseudonym key not given, whose subjects' rows left with values are not looked for`
    : '';
  return `erasure: ${report.erasedRows} rows erased under ${report.erasureEntries} erasure entries${retired.length ? ` (and ${retired.join(', ')} retired)` : ''}${unchecked}`;
}
