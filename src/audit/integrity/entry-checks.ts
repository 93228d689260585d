import { judgeEntry, type ResolvedEntryKey } from './entry-auth';
import { ENTRY_DIGEST_SQL } from './entry-encoding';
import { type Seal } from './seal';
import { type Anomaly } from './verifier';

/** What `audit-verify` found of entry authentication. */
export interface EntryAuthReport {
  /** True when entry keys were given: every row's code was checked. */
  checked: boolean;
  /** The transaction id from which rows must carry a code, as the seal chain records it; null before the first seal made with entry keys. */
  boundary: string | null;
  /** Rows whose code one of the keys made over the row as stored. */
  authentic: number;
  /** Rows without a code written before the boundary: from before entry authentication, never counted as authentic. */
  beforeAuthentication: number;
  /** Rows with a code that was not checked (no key given). */
  unchecked: number;
}

/**
 * The verifier's entry checks: the boundary read from the seal chain, and each row judged by its
 * code (with the keys) or by whether it has one (without). A forged row is a `row_forged` anomaly.
 *
 * @example
 * const checks = new EntryChecks(keys);
 * // SELECT id::text, tx::text ${checks.columns} …; then for each row: checks.judge(id, tx, rest)
 */
export class EntryChecks {
  readonly report: EntryAuthReport;
  private boundarySeal = 0;

  constructor(private readonly keys: readonly ResolvedEntryKey[] | null) {
    this.report = { checked: !!keys && keys.length > 0, boundary: null, authentic: 0, beforeAuthentication: 0, unchecked: 0 };
  }

  /** Columns to select after `id` and `tx` (the digest needs `LEAF_FIELDS` in the FROM list). */
  columns(withLeafFields: boolean): string {
    return this.report.checked && withLeafFields ? `, l.auth_code, ${ENTRY_DIGEST_SQL}` : ', l.auth_code IS NOT NULL';
  }

  /** Whether the digest is selected with {@link columns}: only where the row's fields are read anyway, or with keys. */
  get needsLeafFields(): boolean {
    return this.report.checked;
  }

  /** Takes the boundary from the first seal that records one; a later seal that drops or moves it is named. */
  seal(seal: Seal, add: (a: Anomaly) => void): void {
    const from = seal.entryAuthFrom ?? null;
    if (this.report.boundary === null) {
      if (from === null) return;
      this.report.boundary = from;
      this.boundarySeal = seal.seq;
    } else if (from !== this.report.boundary) {
      add({
        kind: 'seal_changed',
        seal: seal.seq,
        detail: `its entry-authentication boundary (${from ?? 'none'}) is not seal ${this.boundarySeal}'s (${this.report.boundary})`,
      });
    }
  }

  /** Judges one row from the values selected with {@link columns}; returns the anomaly of a forged row. */
  judge(id: string, tx: bigint | null, extra: unknown[]): Anomaly | null {
    const withCode = this.report.checked && extra.length === 2;
    const code = withCode ? (extra[0] as string | null) : extra[0] ? '' : null;
    const verdict = judgeEntry(
      { tx, code, digest: withCode ? (extra[1] as Buffer) : null },
      this.report.boundary === null ? null : BigInt(this.report.boundary),
      withCode ? this.keys : null,
    );
    if (verdict.kind === 'forged') return { kind: 'row_forged', row: id, detail: verdict.reason };
    if (verdict.kind === 'authentic') this.report.authentic += 1;
    else if (verdict.kind === 'legacy') this.report.beforeAuthentication += 1;
    else this.report.unchecked += 1;
    return null;
  }
}
