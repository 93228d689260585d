import { literal } from '../audit-insert-sql';
import { LEAF_FIELDS, LEAF_SQL } from '../integrity/row-encoding';
import { ROW_PROBLEM_SQL } from '../integrity/row-validity';
import { MANIFEST_ENTRY_BYTES } from '../integrity/seal';
import { PERSONAL_VALUES_SQL, personalProblem } from '../privacy/personal-verdict';

/**
 * Where one row stands with the seals, as the read side can tell from `audit_seal` alone (the
 * chain and the witness are `audit-verify`'s to check):
 * - `sealed`: in seal `seq`'s range and manifest, its stored values as they were when sealed
 *   (personal values kept apart: each still matching the commitment the seal covers, or erased);
 * - `unsealed`: after the newest seal, not sealed yet;
 * - `altered`: in seal `seq`'s manifest, but its stored values changed after sealing (`detail`
 *   says how when a personal value no longer matches its commitment), or in the range of a seal
 *   the module cannot authenticate (`detail` names it: `query/row-trust.ts`);
 * - `forged`: in seal `seq`'s range but not in its manifest (planted there, or left out as not
 *   authentic), after the newest seal with a transaction id older than that seal's horizon, or
 *   not sealed yet with personal values that do not match their commitments;
 * - `unsealable`: a row the sealer never seals (`detail` says why; see `row-validity.ts`).
 *
 * @example
 * const seal: AuditSealStatus = { state: 'sealed', seq: 42, sealedAt: '2026-12-04T17:16:42.000Z' };
 */
export interface AuditSealStatus {
  state: 'sealed' | 'unsealed' | 'altered' | 'forged' | 'unsealable';
  /** The seal whose range holds the row (absent for `unsealed` and `unsealable`, and for a backdated `forged`). */
  seq?: number;
  /** When that seal was made, ISO 8601 (absent when its stored time is not finite). */
  sealedAt?: string;
  /** Why, for `forged` and `unsealable`, and for `altered` by a personal value. */
  detail?: string;
}

/** A row's sealing key and what a seal check needs of it, selected beside the row ({@link ROW_SEAL_COLUMNS}). */
export interface RowSealFields {
  seal_tx: string | null;
  seal_leaf: Buffer;
  seal_problem: string | null;
  /** The row's personal values and commitments (`PERSONAL_VALUES_SQL`), null without commitments. */
  seal_personal?: string | null;
}

/**
 * Extra columns of a row read from `audit_log AS l` with `, ${LEAF_FIELDS}` in its FROM list:
 * its `tx`, its leaf hash as the sealer computes it, why it cannot be sealed (or NULL), and its
 * personal values with their commitments.
 */
export const ROW_SEAL_COLUMNS = `, l.tx::text AS seal_tx, ${LEAF_SQL} AS seal_leaf, ${ROW_PROBLEM_SQL} AS seal_problem,
  ${PERSONAL_VALUES_SQL} AS seal_personal`;

/** What the FROM list of a row read needs for {@link ROW_SEAL_COLUMNS}. */
export const ROW_SEAL_FROM = `, ${LEAF_FIELDS}`;

/** The seal found for a row by {@link sealLookupQuery}, as `pg` returns it. */
export interface SealLookupRow {
  seq: string;
  covers: boolean;
  sealed_at: string | null;
  horizon: string;
  last_tx: string | null;
  /** The 8 bytes of the row's leaf the manifest holds, or null when the manifest does not name the row. */
  prefix: Buffer | null;
}

/**
 * The first seal whose range reaches the row `(tx, id)` in sealing order (`tx` NULLS FIRST, then
 * id), or, when none does, the newest seal (`covers` false); no row when there is no seal.
 * Seals cover consecutive ranges in `seq` order, so a binary search over the primary key finds it
 * in about log2(seals) index probes, with no index of its own (`seq` gaps are allowed). The
 * manifest is searched in the server: only the 8 bytes of the row's entry leave it.
 *
 * @example
 * const [seal] = (await reader.read(sealLookupQuery('"public"."audit_seal"', { tx: '812', id }))) as SealLookupRow[];
 */
export function sealLookupQuery(sealTable: string, row: { tx: string | null; id: string }): string {
  const id = `${literal(row.id)}::uuid`;
  const covers =
    row.tx === null
      ? `(s.last_tx IS NOT NULL OR s.last_id >= ${id})`
      : `COALESCE(s.last_tx > ${literal(row.tx)}::bigint OR (s.last_tx = ${literal(row.tx)}::bigint AND s.last_id >= ${id}), false)`;
  const entry = MANIFEST_ENTRY_BYTES;
  // The first match is almost always the row's entry; one at a position that is not an entry's start is searched entry by entry.
  const at = `CASE WHEN p.pos = 0 THEN NULL WHEN (p.pos - 1) % ${entry} = 0 THEN p.pos - 1
    ELSE (SELECT i * ${entry} FROM generate_series(0, length(s.manifest) / ${entry} - 1) AS i
          WHERE substring(s.manifest FROM i * ${entry} + 1 FOR 16) = uuid_send(${id}) LIMIT 1) END`;
  return `WITH RECURSIVE bounds AS (
      SELECT min(s.seq) AS lo, max(s.seq) AS hi FROM ${sealTable} AS s
      UNION ALL
      SELECT CASE WHEN p.covers THEN b.lo ELSE p.seq + 1 END, CASE WHEN p.covers THEN (b.lo + b.hi) / 2 ELSE b.hi END
      FROM bounds AS b, LATERAL (SELECT s.seq, ${covers} AS covers FROM ${sealTable} AS s
        WHERE s.seq >= (b.lo + b.hi) / 2 ORDER BY s.seq LIMIT 1) AS p
      WHERE b.lo < b.hi
    ),
    found AS (SELECT s.* FROM ${sealTable} AS s WHERE s.seq >= (SELECT lo FROM bounds WHERE lo >= hi LIMIT 1) ORDER BY s.seq LIMIT 1)
    SELECT s.seq::text AS seq, ${covers} AS covers, s.horizon::text AS horizon, s.last_tx::text AS last_tx,
      CASE WHEN isfinite(s.sealed_at) THEN (extract(epoch FROM s.sealed_at) * 1000)::bigint::text END AS sealed_at,
      substring(s.manifest FROM (${at}) + 17 FOR 8) AS prefix
    FROM found AS s, LATERAL (SELECT position(uuid_send(${id}) IN s.manifest) AS pos) AS p`;
}

/**
 * The row's {@link AuditSealStatus} from its seal fields and what {@link sealLookupQuery} found.
 *
 * @example
 * const seal = sealStatusOf({ seal_tx: '812', seal_leaf: leaf, seal_problem: null }, found);
 */
export function sealStatusOf(row: RowSealFields, found: SealLookupRow | undefined): AuditSealStatus {
  if (row.seal_problem !== null) return { state: 'unsealable', detail: row.seal_problem };
  // As the sealer judges them: personal values that no longer match their commitments were changed outside the module.
  const personal = personalProblem(row.seal_personal);
  const unsealed: AuditSealStatus = personal === null ? { state: 'unsealed' } : { state: 'forged', detail: personal };
  if (!found) return unsealed;
  if (!found.covers) {
    // As the sealer judges a row picked after the newest seal: no later transaction can be older than its horizon.
    const horizon = BigInt(found.horizon);
    const backdated = row.seal_tx === null ? found.last_tx !== null || horizon > 0n : BigInt(row.seal_tx) < horizon;
    return backdated
      ? { state: 'forged', detail: `after the newest seal (${found.seq}) with a transaction id older than its horizon (${found.horizon})` }
      : unsealed;
  }
  const seal = {
    seq: Number(found.seq),
    ...(found.sealed_at === null ? {} : { sealedAt: new Date(Number(found.sealed_at)).toISOString() }),
  };
  if (found.prefix === null) return { state: 'forged', ...seal, detail: `in the range of seal ${found.seq}, which does not name it` };
  if (!found.prefix.equals(row.seal_leaf.subarray(0, 8))) return { state: 'altered', ...seal };
  return personal === null ? { state: 'sealed', ...seal } : { state: 'altered', ...seal, detail: personal };
}
