import { STDERR_BEHIND_EVENT } from './stderr-line';

/**
 * The `event` field of every JSON line the module writes to stderr. CloudWatch metric filters and
 * alarms match on these names, so they are part of the public contract.
 *
 * @example
 * const buffered = lines.filter((line: AuditEventLine) => line.event === AUDIT_EVENTS.buffered);
 */
export const AUDIT_EVENTS = {
  dbWriteFailed: 'audit.db_write_failed',
  buffered: 'audit.buffered',
  evicted: 'audit.evicted',
  spooled: 'audit.spooled',
  dropped: 'audit.dropped',
  quarantined: 'audit.quarantined',
  recovered: 'audit.recovered',
  flushFailed: 'audit.flush_failed',
  /** A change of an audited entity could not be captured as a diff (the write itself went ahead). */
  diffFailed: 'audit.diff_failed',
  /** A seal committed (integrity on): the witness copy of the seal, outside the database. */
  sealed: 'audit.sealed',
  /** A month removed by retention: the witness copy of its checkpoint, a link of the seal chain as a seal is. */
  retained: 'audit.retained',
  /** A row that did not pass through the module (its entry code fails): never sealed, one line per row. */
  forged: 'audit.forged',
  /** A sealing attempt failed; the sealer tries again by itself. */
  sealFailed: 'audit.seal_failed',
  /** The seals in the database no longer continue the newest one the sealer made or saw: it seals nothing more. */
  chainBroken: 'audit.chain_broken',
  /** Parts 2…n of an entry too long for one line (see `formatEventLines`); part 1 has the event itself. */
  entryPart: 'audit.entry_part',
  /** A pooled connection of the audit DataSource was found inside a transaction block the app left open (said once per process start). */
  connectionInBlock: 'audit.connection_in_block',
  /** stderr's reader is behind: lines were not written (`droppedLines`), or some had not been taken at shutdown (`queuedBytes`). */
  stderrBehind: STDERR_BEHIND_EVENT,
} as const;

/**
 * The name of one of {@link AUDIT_EVENTS}: the `event` field of a stderr line.
 *
 * @example
 * const event: AuditEventName = 'audit.recovered';
 */
export type AuditEventName = (typeof AUDIT_EVENTS)[keyof typeof AUDIT_EVENTS];

/**
 * One structured line: `timestamp`, `level`, `event`, the audit context, and event details.
 *
 * @example
 * const line = JSON.parse(stderrLine) as AuditEventLine;
 * if (line.event === 'audit.db_write_failed') console.log(line.timestamp, line.level);
 */
export interface AuditEventLine {
  timestamp: string;
  level: 'warn' | 'error' | 'info';
  event: AuditEventName;
  [field: string]: unknown;
}
