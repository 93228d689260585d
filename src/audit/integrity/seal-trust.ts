import { createPublicKey, type KeyObject } from 'node:crypto';
import { keyIdOf, type Seal, sealHash, verifySeal } from './seal';

/** Code of a newest seal the sealer cannot authenticate (unsigned, another key, a bad signature, a moved boundary). */
export const SEAL_UNTRUSTED_CODE = 'AUDIT_SEAL_UNTRUSTED';

/** Code of a server whose transaction ids are behind the chain's (a logical restore onto a new server). */
export const TX_BEHIND_CHAIN_CODE = 'AUDIT_TX_BEHIND_CHAIN';

/** What else the sealer knows when it judges the newest seal: the chain before it and the server. */
export interface SealTrustContext {
  /** The sealer's Ed25519 private key, or null. */
  signingKey: KeyObject | null;
  /** The newest signed seal before the newest seal (or that seal itself), or null when none is signed. */
  signedSeq: number | null;
  /** The first seal that records an entry-authentication boundary, and that boundary; null when none does. */
  boundary: { seq: number; from: string } | null;
  /** The server's next transaction id (`pg_snapshot_xmax` of the current snapshot). */
  nextTx: bigint;
}

/** Why the sealer will not build on a seal, with the code of the error it reports. */
export interface Distrust {
  code: typeof SEAL_UNTRUSTED_CODE | typeof TX_BEHIND_CHAIN_CODE;
  detail: string;
}

/**
 * Why the sealer must not continue `seal`, the newest in the database, or null when it may. The
 * app's role may append to `audit_seal` (unless the sealer has a role of its own), so a seal is
 * trusted only as far as it is authenticated: with a signing key, it must match its own hash and
 * be signed by that key (an unsigned seal is accepted only on a chain no seal of which is
 * signed: signing was just turned on); without one, a signed chain cannot be checked at all. In
 * every case its entry-authentication boundary must be the first one recorded, and its horizon
 * must not be ahead of the server's transaction ids (a seal from the future, or a trail restored
 * onto a new server by a logical copy: {@link TX_BEHIND_CHAIN_CODE}).
 *
 * @example
 * const distrust = distrustSeal(newest, { signingKey, signedSeq: 4, boundary: { seq: 1, from: '812' }, nextTx: 9000n });
 * if (distrust) throw new UntrustedSealError(newest, distrust);
 */
export function distrustSeal(seal: Seal, { signingKey, signedSeq, boundary, nextTx }: SealTrustContext): Distrust | null {
  const untrusted = (detail: string): Distrust => ({ code: SEAL_UNTRUSTED_CODE, detail: `seal ${seal.seq} ${detail}` });
  if (!Number.isFinite(seal.sealedAt) || !sealHash(seal).equals(seal.hash)) return untrusted('does not match its own hash');
  const signedBefore = signedSeq !== null && signedSeq !== seal.seq ? signedSeq : null;
  if (!seal.signature && signedBefore !== null) {
    return untrusted(`is not signed, while seal ${signedBefore} before it is: not made by a sealer that holds the signing key`);
  }
  if (signingKey) {
    const mine = keyIdOf(signingKey);
    if (seal.signature && seal.keyId !== mine) return untrusted(`is signed with key ${seal.keyId}, not with this sealer's key ${mine}`);
    if (seal.signature && !verifySeal(seal.hash, seal.signature, createPublicKey(signingKey))) {
      return untrusted(`is signed with key ${mine}, but its signature does not verify`);
    }
  } else if (seal.signature) {
    return untrusted(
      `is signed (key ${seal.keyId}), and no signing key is given (integrity.signingKey, or audit-retention's --signing-key): the sealer cannot check the seal it would continue`,
    );
  }
  if (boundary && boundary.seq !== seal.seq && (seal.entryAuthFrom ?? null) !== boundary.from) {
    return untrusted(
      `moves the entry-authentication boundary (${seal.entryAuthFrom ?? 'none'}, seal ${boundary.seq} recorded ${boundary.from})`,
    );
  }
  const ahead = [seal.horizon, seal.lastTx, seal.entryAuthFrom].some((tx) => tx !== null && tx !== undefined && BigInt(tx) > nextTx);
  if (!ahead) return null;
  const behind =
    `has a horizon of transaction ${seal.horizon}, ahead of this server's transaction ids (the next is ${nextTx}): ` +
    'a trail copied onto another server by a logical dump and restore keeps the old ids, and the new rows would lie below the seals';
  if (seal.signature) {
    return {
      code: TX_BEHIND_CHAIN_CODE,
      detail: `seal ${seal.seq} ${behind}; advance the server's transaction ids past it (docs/RUNBOOK.md section 12)`,
    };
  }
  return untrusted(`${behind}; or the seal was forged. Unsigned, it cannot be told apart (docs/RUNBOOK.md section 12)`);
}

/**
 * Thrown when the newest seal cannot be continued ({@link distrustSeal}): the sealer seals
 * nothing more and reports it as a cut chain, naming the seal.
 *
 * @example
 * try { await sealOnce(runner, table, options); } catch (e) { if (e instanceof UntrustedSealError) e.detail; }
 */
export class UntrustedSealError extends Error {
  override readonly name = 'UntrustedSealError';
  readonly code: Distrust['code'];
  readonly detail: string;

  constructor(
    readonly seal: Pick<Seal, 'seq' | 'hash'>,
    distrust: Distrust,
  ) {
    super(`the sealer will not continue seal ${seal.seq}: ${distrust.detail}`);
    this.code = distrust.code;
    this.detail = distrust.detail;
  }
}

/**
 * The statement that reads the rest of {@link SealTrustContext} (run with `search_path` pinned):
 * `signed_seq`, `boundary_seq`, `boundary_from`, `next_tx`. Each subquery is one lookup in a
 * partial index (migration `AuditSealTrustIndexes1765600000000`), however long the chain and
 * whether or not it has signatures or a boundary.
 *
 * @example
 * const [row] = await query(trustContextSql('"public"."audit_seal"'), []);
 */
export function trustContextSql(sealTable: string): string {
  return (
    `SELECT (SELECT s.seq::text FROM ${sealTable} AS s WHERE s.signature IS NOT NULL ORDER BY s.seq DESC LIMIT 1) AS signed_seq, ` +
    `b.seq::text AS boundary_seq, b.entry_auth_from::text AS boundary_from, ` +
    `pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text AS next_tx ` +
    `FROM (SELECT 1) AS one LEFT JOIN LATERAL (SELECT s.seq, s.entry_auth_from FROM ${sealTable} AS s ` +
    `WHERE s.entry_auth_from IS NOT NULL ORDER BY s.seq LIMIT 1) AS b ON true`
  );
}

type Query = (sql: string, parameters: unknown[]) => Promise<unknown>;

/**
 * Throws an {@link UntrustedSealError} when the sealer must not continue `newest` (see
 * {@link distrustSeal}); reads the chain's signatures, its boundary and the server's next
 * transaction id. Run it with `search_path` pinned.
 *
 * @example
 * await checkNewestSeal(query, '"public"."audit_seal"', newest, signingKey);
 */
export async function checkNewestSeal(query: Query, sealTable: string, newest: Seal, signingKey: KeyObject | null): Promise<void> {
  const [row] = (await query(trustContextSql(sealTable), [])) as {
    signed_seq: string | null;
    boundary_seq: string | null;
    boundary_from: string | null;
    next_tx: string;
  }[];
  const distrust = distrustSeal(newest, {
    signingKey,
    signedSeq: row.signed_seq === null ? null : Number(row.signed_seq),
    boundary: row.boundary_seq === null ? null : { seq: Number(row.boundary_seq), from: row.boundary_from as string },
    nextTx: BigInt(row.next_tx),
  });
  if (distrust) throw new UntrustedSealError(newest, distrust);
}
