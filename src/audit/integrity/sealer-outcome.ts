import { type ForgedRowsReport } from '../sinks';
import { type ChainBreak, type ChainPoint } from './chain-memory';
import { type UntrustedSealError } from './seal-trust';
import { type ForgedRow } from './entry-auth';
import { type Seal, sealHash } from './seal';
import { type UnknownKeyRow } from './seal-store';

/** Forged rows named in one Sentry warning; the lines name them all. */
export const FORGED_IN_REPORT = 20;

/** What one call of `sealOnce` returned: a seal, `null` (nothing to seal), `'busy'`, or no seal for an unknown key. */
export type SealResult =
  (Seal & { forged: ForgedRow[]; unknownKey: UnknownKeyRow | null }) | { seal: null; unknownKey: UnknownKeyRow } | null | 'busy';

/** What the sealer does with one {@link SealResult}. */
export interface SealStep {
  /** The seal committed, to count, remember and witness; null when none was. */
  seal: (Seal & { forged: ForgedRow[] }) | null;
  /** A row sealing stopped before, its code under an entry key this process does not hold. */
  unknownKey: UnknownKeyRow | null;
  /** Nothing sealable was left behind: the health indicator's lag starts again from 0. */
  caughtUp: boolean;
  /** The attempt makes no further seal now. */
  last: boolean;
}

/**
 * Reads one result of `sealOnce`: another sealer holds the lock (stop, try next time), nothing was
 * left (caught up), a seal of fewer than `maxRows` rows (caught up, and the next seal finds
 * nothing), a full seal (go on), or a row under an unknown entry key (stop after any seal made
 * before it).
 *
 * @example
 * const step = sealStep(await sealOnce(session, table, options), 20_000);
 * if (step.caughtUp) console.log('nothing left to seal');
 */
export function sealStep(result: SealResult, maxRows: number): SealStep {
  if (result === 'busy') return { seal: null, unknownKey: null, caughtUp: false, last: true };
  if (result === null) return { seal: null, unknownKey: null, caughtUp: true, last: true };
  if (!('seq' in result)) return { seal: null, unknownKey: result.unknownKey, caughtUp: false, last: true };
  return { seal: result, unknownKey: result.unknownKey, caughtUp: result.rowCount < maxRows, last: result.unknownKey !== null };
}

/**
 * The break to report when the newest seal in the database does not match its own hash (a field
 * changed, or a `sealed_at` that is not a finite time): the sealer cannot continue it. Null when
 * it matches. `remembered` is what the sealer's chain memory holds, if anything.
 *
 * @example
 * const found = ownHashBreak('audit/public.audit_log', memory.remembered, memory.file, newest);
 * if (found) throw new ChainBrokenError(found);
 */
export function ownHashBreak(trail: string, remembered: ChainPoint | null, memoryFile: string | null, newest: Seal): ChainBreak | null {
  const finite = Number.isFinite(newest.sealedAt);
  if (finite && sealHash(newest).equals(newest.hash)) return null;
  return {
    trail,
    rememberedSeq: remembered?.seq ?? newest.seq,
    rememberedHash: remembered?.hash ?? newest.hash.toString('hex'),
    foundSeq: newest.seq,
    foundHash: newest.hash.toString('hex'),
    detail: `seal ${newest.seq}, the newest in the database, does not match its own hash (a field was changed${finite ? '' : ': its sealed_at is not a finite time'}): the sealer cannot continue it`,
    memoryFile,
  };
}

/**
 * The break to report when the newest seal cannot be authenticated (see `seal-trust.ts`): the
 * sealer stops as for a cut chain, the line naming the seal, why, and the error's code.
 *
 * @example
 * if (error instanceof UntrustedSealError) reportBreak(untrustedBreak(trail, memory, error));
 */
export function untrustedBreak(
  trail: string,
  memory: { remembered: ChainPoint | null; file: string | null } | null,
  error: UntrustedSealError,
): ChainBreak {
  return {
    trail,
    rememberedSeq: memory?.remembered?.seq ?? error.seal.seq,
    rememberedHash: memory?.remembered?.hash ?? error.seal.hash.toString('hex'),
    foundSeq: error.seal.seq,
    foundHash: error.seal.hash.toString('hex'),
    detail: error.detail,
    memoryFile: memory?.file ?? null,
    code: error.code,
  };
}

/**
 * What the sealer reports of the forged rows it left out of seal `seq`: one `audit.forged` line's
 * fields per row, and one report naming the first 20 for Sentry. With `privacy` on, neither holds
 * the actor id a row claims (`userId: null`): an erasure could not reach it there, and the row's
 * id is what finds it (docs/PRIVACY.md, "What erasure keeps").
 *
 * @example
 * const { lines, report } = forgedReport('audit/public.audit_log', 12, seal.forged, options.privacy.enabled);
 * for (const fields of lines) consoleSink.emit(AUDIT_EVENTS.forged, 'error', fields);
 */
export function forgedReport(
  trail: string,
  seq: number,
  forged: ForgedRow[],
  privacy = false,
): { lines: Record<string, unknown>[]; report: ForgedRowsReport } {
  const rows = privacy ? forged.map((row) => ({ ...row, userId: null })) : forged;
  const lines = rows.map((row) => ({
    trail,
    auditId: row.id,
    action: row.action,
    entityType: row.entityType,
    entityId: row.entityId,
    userId: row.userId,
    occurredAt: row.occurredAt,
    tx: row.tx,
    seal: seq,
    reason: row.reason,
  }));
  return { lines, report: { trail, seal: seq, count: rows.length, rows: rows.slice(0, FORGED_IN_REPORT) } };
}
