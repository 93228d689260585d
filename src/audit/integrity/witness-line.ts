import { AUDIT_EVENTS } from '../sinks';
import { type Seal } from './seal';

/**
 * The witness line of a seal (`audit.sealed`) or of a retention checkpoint (`audit.retained`,
 * with the month, its rows and the newest seal that covered them): what the sealer and retention
 * write to stderr after the commit, and what `audit-verify --witness` reads back.
 *
 * @example
 * const { event, fields } = witnessLine('audit/public.audit_log', seal);
 * new ConsoleSink().emit(event, 'info', fields);
 */
export function witnessLine(
  trail: string,
  seal: Seal,
): { event: typeof AUDIT_EVENTS.sealed | typeof AUDIT_EVENTS.retained; fields: Record<string, unknown> } {
  const fields: Record<string, unknown> = {
    trail,
    seq: seal.seq,
    hash: seal.hash.toString('hex'),
    prevHash: seal.prevHash.toString('hex'),
    root: seal.root.toString('hex'),
    rows: seal.rowCount,
    lastTx: seal.lastTx,
    lastId: seal.lastId,
    horizon: seal.horizon,
    sealedAt: new Date(seal.sealedAt).toISOString(),
    keyId: seal.keyId,
    signature: seal.signature?.toString('base64') ?? null,
    entryAuthFrom: seal.entryAuthFrom ?? null,
  };
  if (!seal.retention) return { event: AUDIT_EVENTS.sealed, fields };
  return {
    event: AUDIT_EVENTS.retained,
    fields: {
      ...fields,
      month: seal.retention.month,
      retainedRows: seal.retention.rows,
      coveredHash: seal.retention.covered?.toString('hex') ?? null,
    },
  };
}
