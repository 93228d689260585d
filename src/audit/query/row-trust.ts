import { createPublicKey, type KeyObject } from 'node:crypto';
import { literal } from '../audit-insert-sql';
import { judgeEntry, type ResolvedEntryKey } from '../integrity/entry-auth';
import { ENTRY_DIGEST_SQL } from '../integrity/entry-encoding';
import { LEAF_FIELDS } from '../integrity/row-encoding';
import { keyIdOf, sealHash, verifySeal } from '../integrity/seal';
import { SEAL_COLUMNS_SQL, toSeal } from '../integrity/seal-store';
import { ERASURE_ACTION } from '../privacy/erasure';

/**
 * Seal `seq` as {@link sealProblem} needs it: every column but the manifest, which the server
 * hashes (a seal's manifest may be a megabyte; its SHA-256 is what the seal's hash covers), and
 * the first signed seal before it, if any.
 *
 * @example
 * const [row] = await reader.read(sealCheckQuery('"public"."audit_seal"', 42));
 */
export function sealCheckQuery(sealTable: string, seq: number): string {
  return sealsChecked(sealTable, `s.seq = ${literal(String(seq))}::bigint`);
}

/**
 * The retention checkpoints that carry erasure `id` forward, as {@link sealProblem} needs them.
 *
 * @example
 * const rows = await reader.read(checkpointsCarryingQuery('"public"."audit_seal"', erasureId));
 */
export function checkpointsCarryingQuery(sealTable: string, id: string): string {
  return sealsChecked(
    sealTable,
    `s.retention_erasures IS NOT NULL AND pg_catalog.strpos(s.retention_erasures, ${literal(`"${id}": {"rows"`)}) > 0`,
  );
}

function sealsChecked(sealTable: string, where: string): string {
  const columns = SEAL_COLUMNS_SQL.replace('manifest, ', "'\\x'::bytea AS manifest, pg_catalog.sha256(s.manifest) AS manifest_sha256, ");
  return `SELECT ${columns},
      (SELECT b.seq::text FROM ${sealTable} AS b WHERE b.signature IS NOT NULL AND b.seq < s.seq ORDER BY b.seq LIMIT 1) AS signed_before
    FROM ${sealTable} AS s WHERE ${where}`;
}

/**
 * Why the seal a row read relies on cannot be trusted, or null when it can. The app's role may
 * append to `audit_seal` unless the sealer has a role of its own, so a seal counts only as far as
 * this process can authenticate it, as the sealer judges the seal it continues
 * (`integrity/seal-trust.ts`): its fields must match its hash; with the signing key, it must be
 * signed by that key, or be unsigned on a chain signed from later on (signing was turned on after
 * it). Without the signing key only the hash is checked, which whoever writes a seal can compute.
 *
 * @example
 * const problem = sealProblem(row, options.integrity.signingKey); // 'seal 43 is signed with key …, but its signature does not verify'
 */
export function sealProblem(row: Record<string, unknown> | undefined, signingKey: KeyObject | null): string | null {
  if (!row) return 'the seal that holds it is gone';
  const seal = toSeal(row);
  const named = `seal ${seal.seq}`;
  if (!Number.isFinite(seal.sealedAt) || !sealHash(seal, row.manifest_sha256 as Buffer).equals(seal.hash)) {
    return `${named} does not match its own hash`;
  }
  if (!signingKey) return null;
  const mine = keyIdOf(signingKey);
  if (!seal.signature) {
    return row.signed_before === null ? null : `${named} is not signed, while seal ${String(row.signed_before)} before it is`;
  }
  if (seal.keyId !== mine) return `${named} is signed with key ${seal.keyId}, not with this trail's signing key ${mine}`;
  if (!verifySeal(seal.hash, seal.signature, createPublicKey(signingKey)))
    return `${named} is signed with key ${mine}, but its signature does not verify`;
  return null;
}

/**
 * The `audit_erasure` entries that claim erasure `id`, with what {@link erasureEntryAuthentic}
 * needs of each, and the trail's entry-authentication boundary.
 *
 * @example
 * const rows = await reader.read(erasureEntriesQuery('"public"."audit_log"', '"public"."audit_seal"', erasureId));
 */
export function erasureEntriesQuery(table: string, sealTable: string, id: string): string {
  return `SELECT l.tx::text AS tx, l.auth_code AS code, ${ENTRY_DIGEST_SQL} AS digest,
      (SELECT b.entry_auth_from::text FROM ${sealTable} AS b WHERE b.entry_auth_from IS NOT NULL ORDER BY b.seq LIMIT 1) AS boundary
    FROM ${table} AS l, ${LEAF_FIELDS}
    WHERE l.entity_type = ${literal(ERASURE_ACTION)} AND l.entity_id = ${literal(id)} AND l.action = ${literal(ERASURE_ACTION)}`;
}

/**
 * Whether one of the entries {@link erasureEntriesQuery} found is the module's own, as the sealer
 * judges a row: with the entry keys, its code must check; an entry without a code counts only
 * when written before entry authentication began (or before any seal recorded its start).
 * Without the keys a code cannot be checked, and any entry that carries one counts.
 *
 * @example
 * erasureEntryAuthentic(rows, options.integrity.entryKeys); // false for a row inserted without a code
 */
export function erasureEntryAuthentic(rows: readonly Record<string, unknown>[], keys: readonly ResolvedEntryKey[]): boolean {
  return rows.some((row) => {
    const boundary = row.boundary === null ? null : BigInt(row.boundary as string);
    const verdict = judgeEntry(
      {
        tx: row.tx === null ? null : BigInt(row.tx as string),
        code: (row.code as string | null) ?? null,
        digest: (row.digest as Buffer | null) ?? null,
      },
      boundary,
      keys,
    );
    return verdict.kind !== 'forged';
  });
}
