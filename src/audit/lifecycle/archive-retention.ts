import { createPublicKey, type KeyObject } from 'node:crypto';
import { type Client } from 'pg';
import { verifyArchive } from './archive-verifier';
import { writeArchive } from './archive-writer';

/**
 * The archive step of `audit-retention --archive-dir`: writes the month's archive, then checks the
 * file written (offline, as `audit-verify --archive` would, signatures against the signing key's
 * public half). The month stays when the archive is refused (`kept`: not wholly sealed, or its lock
 * held by another run: an erasure rewriting the archive, another writer) or fails
 * or does not verify (`failed`); it goes only after a clean check, and only while it holds the
 * month's rows the archive holds (`archivedRows`). Runs between retention's transactions, on its
 * connection.
 *
 * @example
 * await applyRetention({ query }, { ...run, archive: archiveBeforeRetire(client, { table, trail, out: '/archive', signingKey, timeoutMs }) });
 */
export function archiveBeforeRetire(
  client: Client,
  where: { table: string; trail: string; out: string; signingKey: KeyObject | null; timeoutMs: number },
): (month: string) => Promise<{ action: 'kept' | 'failed'; reason: string } | { archivedRows: number }> {
  const publicKey = where.signingKey ? createPublicKey(where.signingKey) : undefined;
  return async (month) => {
    let sealsPath: string;
    let archivedRows: number;
    try {
      const result = await writeArchive(client, {
        table: where.table,
        month,
        out: where.out,
        trail: where.trail,
        timeoutMs: where.timeoutMs,
        command: 'audit-retention',
      });
      if (!result.written) {
        // An archive in place that this one must not replace: the month stays, and the run says so.
        if (result.code) return { action: 'failed', reason: `not archived: ${result.code}: ${result.refused}` };
        return { action: 'kept', reason: `not archived: ${result.refused}` };
      }
      sealsPath = result.sealsPath;
      const { report, archive } = await verifyArchive(sealsPath, { publicKey, allowEmptyMonth: true });
      archivedRows = archive.monthRows;
      const first = report.anomalies[0];
      if (archive.damaged) return { action: 'failed', reason: `its archive ${sealsPath} does not verify: ${archive.damaged}` };
      if (first) {
        return {
          action: 'failed',
          reason: `its archive ${sealsPath} does not verify: ${report.anomalyCount} anomalies, the first ${first.kind} ${first.row ?? first.seal}: ${first.detail}`,
        };
      }
    } catch (error) {
      const { code, message } = error as { code?: string; message: string };
      // Another run holds the archive (an erasure rewriting it, another writer): the month stays with the archive it has.
      if (code === 'AUDIT_ARCHIVE_LOCKED') {
        return {
          action: 'kept',
          reason: `not archived for this run: ${code}: ${message}; the month stays: run retention again once that run has ended`,
        };
      }
      return { action: 'failed', reason: `not archived: ${code ?? 'error'}: ${message}` };
    }
    return { archivedRows };
  };
}
