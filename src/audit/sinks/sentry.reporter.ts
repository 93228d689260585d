import { Injectable } from '@nestjs/common';
import * as Sentry from '@sentry/nestjs';
import {
  SENTRY_CHAIN_BROKEN_FINGERPRINT,
  SENTRY_DROPPED_FINGERPRINT,
  SENTRY_FINGERPRINT,
  SENTRY_FORGED_FINGERPRINT,
  SENTRY_QUARANTINED_FINGERPRINT,
  SENTRY_RECOVERY_FINGERPRINT,
  SENTRY_SEALING_FINGERPRINT,
} from '../audit.constants';
import {
  type AuditReporter,
  type ChainBrokenReport,
  type DropReport,
  type ForgedRowsReport,
  type QuarantineReport,
  type RecoveryReport,
  type SealFailureReport,
  type WriteFailureReport,
} from './audit-reporter';

/** The error sent to Sentry: only the sanitized message, never the driver's error object. */
export class AuditDbWriteError extends Error {
  override readonly name = 'AuditDbWriteError';

  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/**
 * Reports each failed audit-database write attempt to Sentry at level `warning`, all under one
 * fingerprint, dropped and quarantined entries at level `warning` under fingerprints of their own,
 * a cut seal chain at level `error`,
 * and the end of an outage at level `info` with its totals.
 *
 * @example
 * new SentryReporter().writeFailed({ error, attempt: 'write', action: 'nda_created', userId: 'u-42', entityType: 'NDA',
 *   entityId: '7', entries: 1, buffered: 0 });
 */
@Injectable()
export class SentryReporter implements AuditReporter {
  writeFailed(report: WriteFailureReport): void {
    const { error, ...context } = report;
    capture(() =>
      Sentry.captureException(new AuditDbWriteError(error.message, error.code), {
        level: 'warning',
        fingerprint: SENTRY_FINGERPRINT,
        tags: { 'audit.action': report.action ?? 'none', 'audit.entity_type': report.entityType ?? 'none', 'audit.error_code': error.code },
        contexts: { audit: { ...context, errorCode: error.code } },
        user: report.userId ? { id: report.userId } : undefined,
      }),
    );
  }

  entriesDropped(report: DropReport): void {
    capture(() =>
      Sentry.captureMessage(`Audit entries dropped: ${report.count} (${report.reason})`, {
        level: 'warning',
        fingerprint: SENTRY_DROPPED_FINGERPRINT,
        tags: { 'audit.action': report.action, 'audit.drop_reason': report.reason },
        contexts: { audit: { ...report } },
      }),
    );
  }

  entriesQuarantined(report: QuarantineReport): void {
    const { error, ...context } = report;
    capture(() =>
      Sentry.captureMessage(`Audit entries quarantined: ${report.count} refused by the database (${error.code})`, {
        level: 'warning',
        fingerprint: SENTRY_QUARANTINED_FINGERPRINT,
        tags: { 'audit.action': report.action, 'audit.entity_type': report.entityType ?? 'none', 'audit.error_code': error.code },
        contexts: { audit: { ...context, errorCode: error.code, errorMessage: error.message } },
      }),
    );
  }

  sealingFailed(report: SealFailureReport): void {
    const { error, ...context } = report;
    capture(() =>
      Sentry.captureMessage(`Audit sealing failed (${error.code}): ${error.message}`, {
        level: 'warning',
        fingerprint: SENTRY_SEALING_FINGERPRINT,
        tags: { 'audit.error_code': error.code },
        contexts: { audit: { ...context, errorCode: error.code } },
      }),
    );
  }

  chainBroken(report: ChainBrokenReport): void {
    capture(() =>
      Sentry.captureMessage(`Audit seal chain broken (${report.trail}): ${report.detail}; the sealer seals nothing more`, {
        level: 'error',
        fingerprint: SENTRY_CHAIN_BROKEN_FINGERPRINT,
        tags: { 'audit.trail': report.trail },
        contexts: { audit: { ...report } },
      }),
    );
  }

  forgedRows(report: ForgedRowsReport): void {
    capture(() =>
      Sentry.captureMessage(`Audit rows forged: ${report.count} row(s) not written by the module, left out of seal ${report.seal}`, {
        level: 'warning',
        fingerprint: SENTRY_FORGED_FINGERPRINT,
        // One string a row: Sentry's default normalizeDepth (3) turns an object at contexts.audit.rows[n] into "[Object]".
        contexts: { audit: { trail: report.trail, seal: report.seal, count: report.count, rows: report.rows.map(forgedRowText) } },
      }),
    );
  }

  recovered(report: RecoveryReport): void {
    capture(() =>
      Sentry.captureMessage('Audit database recovered', {
        level: 'info',
        fingerprint: SENTRY_RECOVERY_FINGERPRINT,
        contexts: { audit: { ...report } },
      }),
    );
  }
}

/** One forged row as the Sentry warning names it: its id first (what finds it), then why, and what it claims. */
function forgedRowText(row: ForgedRowsReport['rows'][number]): string {
  const claim = `${row.action ?? '(no action)'} on ${row.entityType ?? '(no entity type)'} ${row.entityId ?? '(no entity id)'}`;
  return `${row.id} (tx ${row.tx ?? 'unknown'}): ${row.reason}; claims ${claim}${row.userId === null ? '' : ` by ${row.userId}`}`;
}

/**
 * Sends from a scope whose last event processor removes what the surrounding HTTP request would
 * add (headers, cookies, body, query, client ip) and the breadcrumbs: an audit report carries only
 * what the module put in it.
 */
function capture(send: () => void): void {
  Sentry.withScope((scope) => {
    scope.addEventProcessor((event) => {
      delete event.request;
      delete event.breadcrumbs;
      if (event.user) delete event.user.ip_address;
      return event;
    });
    send();
  });
}
