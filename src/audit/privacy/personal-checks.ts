import { type Client } from 'pg';
import { quoteTablePath } from '../audit-insert-sql';
import { type Anomaly } from '../integrity/verifier';
import { ERASURE_ACTION } from './erasure';
import { commitment, ERASED, parseCommitments, parsePersonal, type PersonalPath } from './personal-values';

/** What `audit-verify` found of erasure: rows erased, and the `audit_erasure` entries they are erased under. */
export interface ErasureReport {
  erasedRows: number;
  erasureEntries: number;
}

/**
 * What the verifier selects of each row, after its other columns: for a row with commitments
 * (row encoding version 2) its actor columns, `personal` and `commitments`, as one JSON text;
 * NULL for any other row.
 */
export const PERSONAL_CHECK_SQL = `, CASE WHEN l.commitments IS NULL THEN NULL ELSE pg_catalog.json_build_array(l.user_id, l.ip, l.user_agent, l.personal, l.commitments)::text END`;

const ACTOR_COLUMNS = ['user_id', 'ip', 'user_agent'];

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

  /** Judges one row from its {@link PERSONAL_CHECK_SQL} text; returns the anomaly of a value changed. */
  judge(id: string, text: unknown): Anomaly | null {
    if (text === null || text === undefined) return null;
    const problem = this.problemOf(id, text as string);
    return problem ? { kind: 'row_personal_changed', row: id, detail: problem } : null;
  }

  private problemOf(id: string, text: string): string | null {
    const [userId, ip, userAgent, personalText, commitmentsText] = JSON.parse(text) as (string | null)[];
    const actor = [userId, ip, userAgent];
    const commitments = parseCommitments(commitmentsText);
    const personal = parsePersonal(personalText);
    if (!commitments) return 'its commitments are not as the module writes them';
    if (!personal) return 'its personal values are neither as the module writes them nor erased';
    const committed = new Map(commitments.map(([path, c]) => [JSON.stringify(path), c]));
    if (committed.size !== commitments.length) return 'a personal value is committed to twice';
    for (const [i, column] of ACTOR_COLUMNS.entries()) {
      const has = committed.has(JSON.stringify([column]));
      if (has !== (actor[i] !== null))
        return `its ${column} is ${actor[i] === null ? 'missing' : 'present'}, its commitments say otherwise`;
    }
    if ('erased' in personal) {
      const changed = ACTOR_COLUMNS.filter((_, i) => actor[i] !== null && actor[i] !== ERASED);
      if (changed.length > 0) return `erased, but its ${changed.join(', ')} holds a value instead of ${ERASED}`;
      const list = this.erased.get(personal.erased) ?? [];
      list.push(id);
      this.erased.set(personal.erased, list);
      this.report.erasedRows += 1;
      return null;
    }
    const present: [PersonalPath, string][] = [];
    ACTOR_COLUMNS.forEach((column, i) => {
      if (actor[i] !== null) present.push([[column], actor[i] as string]);
    });
    present.push(...personal.values);
    if (present.length !== committed.size) return 'its personal values are not the ones committed to';
    for (const [path, value] of present) {
      const expected = committed.get(JSON.stringify(path));
      if (expected === undefined) return `its value at ${path.join('.')} was never committed to`;
      if (typeof value !== 'string' || commitment(personal.salt, path, value) !== expected) {
        return `its value at ${path.join('.')} does not match its commitment: changed, not erased`;
      }
    }
    return null;
  }

  /**
   * Matches the erased rows with the `audit_erasure` entries (read in the verifier's snapshot):
   * rows of an erasure no entry records, or more rows than its entry counts, are each named.
   */
  async finish(client: Client, table: string, add: (a: Anomaly) => void): Promise<void> {
    const { rows } = await client.query<{ id: string; erasure: string | null; count: string | null }>(
      `SELECT l.id::text AS id, l.changes -> 'erasure' ->> 'id' AS erasure, l.changes -> 'erasure' ->> 'rows' AS count
       FROM ${quoteTablePath(table)} AS l WHERE l.action OPERATOR(pg_catalog.=) $1`,
      [ERASURE_ACTION],
    );
    this.report.erasureEntries = rows.length;
    const counted = new Map<string, number>();
    for (const row of rows) if (row.erasure !== null) counted.set(row.erasure, (counted.get(row.erasure) ?? 0) + Number(row.count ?? 0));
    for (const [erasure, ids] of this.erased) {
      const count = counted.get(erasure);
      if (count === undefined) {
        for (const id of ids) {
          add({
            kind: 'row_erased_unaccounted',
            row: id,
            detail: `erased under erasure ${erasure}, which no ${ERASURE_ACTION} entry records`,
          });
        }
      } else if (ids.length > count) {
        for (const id of ids) {
          add({
            kind: 'row_erased_unaccounted',
            row: id,
            detail: `one of ${ids.length} rows erased under erasure ${erasure}, whose ${ERASURE_ACTION} entry counts ${count}`,
          });
        }
      }
    }
  }
}
