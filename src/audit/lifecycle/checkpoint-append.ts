import { type KeyObject } from 'node:crypto';
import { merkleRoot } from '../integrity/merkle';
import { keyIdOf, type RetentionMark, type Seal, sealHash, signSeal } from '../integrity/seal';
import { SEAL_COLUMNS_SQL, toSeal } from '../integrity/seal-store';
import { checkNewestSeal } from '../integrity/seal-trust';
import { encodeRetained } from './checkpoint';
import { type MonthAnalysis, type Query } from './month-analysis';

/**
 * Why rows checked for removal (a month, or the legacy partition's range) must stay, or null when
 * they may go: rows not wholly sealed (after the newest seal, or left out of a sealed range), no
 * seal at all, or an archive made before rows were written since.
 *
 * @example
 * removalBlocker(analysis, heads.length, undefined); // 'not wholly sealed: 3 rows after the newest seal'
 */
export function removalBlocker(analysis: MonthAnalysis, seals: number, archivedRows: number | undefined): string | null {
  const problems = [
    analysis.unsealed > 0 ? `${analysis.unsealed} rows after the newest seal` : '',
    analysis.leftOut > 0 ? `${analysis.leftOut} rows in sealed ranges that no seal sealed (forged or invalid: see audit-verify)` : '',
    seals === 0 ? 'no seal yet (integrity off, or the sealer has not run)' : '',
  ].filter((p) => p !== '');
  if (problems.length > 0) return `not wholly sealed: ${problems.join(', ')}`;
  if (archivedRows !== undefined && archivedRows !== analysis.rows) {
    return `its archive holds ${archivedRows} of its rows, it holds ${analysis.rows} now (written since it was archived): archive it again`;
  }
  return null;
}

/**
 * What a removal's decision says it covers: `no rows`, or the rows and the seals that sealed them.
 *
 * @example
 * coveredText(analysis); // '1200 rows, sealed by seals 4–9'
 */
export function coveredText(analysis: MonthAnalysis): string {
  const seqs = [...analysis.retained.keys()].sort((a, b) => a - b);
  return seqs.length === 0 ? 'no rows' : `${analysis.rows} rows, sealed by seals ${seqs[0]}${seqs.length > 1 ? `–${seqs.at(-1)}` : ''}`;
}

/**
 * Appends the retention checkpoint that records `mark` after the newest seal, in the caller's
 * transaction (the sealer's lock held): chained and signed with `signingKey` like a seal, its
 * manifest the rows `analysis` found by seal. `storedMonth` is the date its `retention_month`
 * column holds (a month's first day; the legacy range's last day). A chain signed with a key the
 * caller lacks, or a newest seal the app's role could have appended, is refused first.
 *
 * @example
 * const checkpoint = await appendCheckpoint(query, sealTable, { signingKey, now: Date.now() }, analysis, mark, '2026-01-01');
 */
export async function appendCheckpoint(
  query: Query,
  sealTable: string,
  run: { signingKey: KeyObject | null; now?: number },
  analysis: MonthAnalysis,
  mark: RetentionMark,
  storedMonth: string,
): Promise<Seal> {
  const [newestRow] = await query(`SELECT ${SEAL_COLUMNS_SQL} FROM ${sealTable} AS s ORDER BY s.seq DESC LIMIT 1`);
  const newest = toSeal(newestRow);
  if (newest.keyId !== null && !run.signingKey) {
    throw Object.assign(
      new Error(`the seal chain is signed (key ${newest.keyId}): give the signing key (--signing-key or AUDIT_INTEGRITY_SIGNING_KEY)`),
      { code: 'AUDIT_RETENTION_KEY_MISSING' },
    );
  }
  // A checkpoint continues no seal the app's role could have appended (see integrity/seal-trust.ts).
  await checkNewestSeal(query, sealTable, newest, run.signingKey);
  const unsigned = {
    seq: newest.seq + 1,
    version: newest.version,
    prevHash: newest.hash,
    lastTx: newest.lastTx,
    lastId: newest.lastId,
    horizon: newest.horizon,
    rowCount: 0,
    root: merkleRoot([]),
    manifest: encodeRetained(analysis.retained),
    sealedAt: run.now ?? Date.now(),
    entryAuthFrom: newest.entryAuthFrom ?? null,
    retention: mark,
  };
  const hash = sealHash(unsigned);
  const checkpoint: Seal = {
    ...unsigned,
    hash,
    keyId: run.signingKey ? keyIdOf(run.signingKey) : null,
    signature: run.signingKey ? signSeal(hash, run.signingKey) : null,
  };
  await query(
    `INSERT INTO ${sealTable} (seq, version, prev_hash, last_tx, last_id, horizon, row_count, root, manifest, sealed_at, hash, key_id, signature,
       entry_auth_from, retention_month, retention_rows, retention_covered, retention_erasures)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::timestamptz, $11, $12, $13, $14, $15::date, $16, $17, $18)`,
    [
      checkpoint.seq,
      checkpoint.version,
      checkpoint.prevHash,
      checkpoint.lastTx,
      checkpoint.lastId,
      checkpoint.horizon,
      0,
      checkpoint.root,
      checkpoint.manifest,
      new Date(checkpoint.sealedAt).toISOString(),
      checkpoint.hash,
      checkpoint.keyId,
      checkpoint.signature,
      checkpoint.entryAuthFrom,
      storedMonth,
      mark.rows,
      mark.covered,
      mark.erasures ?? null,
    ],
  );
  return checkpoint;
}
