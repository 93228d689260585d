import { Injectable, Optional } from '@nestjs/common';
import { type HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { AuditService } from './audit.service';
import { AuditSealer } from './integrity/audit-sealer';
import { AuditPartitions } from './lifecycle/audit-partitions';

/**
 * Terminus indicator of the audit database as the audit service sees it: `up` while entries are
 * being committed, `down` (so `/health` answers 503) while they are being buffered. Details:
 * `state`, `pending` (queued or in flight to the database), `buffered`, `dropped`, `quarantined`,
 * `unreadable` (values of entries that could not be read), `diffFaults` (entity changes not
 * captured as diffs), `diskTimeouts` (spool and quarantine file operations given up at their
 * deadline), `stderrQueuedBytes` (lines waiting in memory for a stderr whose reader is behind),
 * `stderrDropped` (lines not written: that queue full, or stderr refused them), `stderrLate` (sync entries answered before
 * stderr took their line), `downSince`,
 * `lastError` (sanitized: no URL, host or password); with a spool also `spooled`, `spoolBytes`;
 * with integrity on also `integrity: { lastSealedAt, lag, failures, sealed, forged, chainBroken }`
 * (sealing, even over a cut chain, never turns the indicator down: it is the write path's health);
 * and `partitions: { partitioned, coveredUntil, defaultRows, created, moved, lastRunAt, lastError }`
 * (docs/LIFECYCLE.md; never turns it down either).
 *
 * @example
 * import { Controller, Get } from '@nestjs/common';
 * import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
 *
 * @Controller('health')
 * class HealthController {
 *   constructor(private readonly health: HealthCheckService, private readonly auditDb: DbHealthIndicator) {}
 *
 *   @Get() @HealthCheck()
 *   check() { return this.health.check([() => this.auditDb.isHealthy()]); }
 * }
 */
@Injectable()
export class DbHealthIndicator {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly audit: AuditService,
    private readonly sealer: AuditSealer,
    @Optional() private readonly partitions?: AuditPartitions,
  ) {}

  isHealthy(key = 'audit_db'): HealthIndicatorResult {
    const indicator = this.indicators.check(key);
    const {
      state,
      pending,
      buffered,
      dropped,
      quarantined,
      unreadable,
      diffFaults,
      diskTimeouts,
      stderrQueuedBytes,
      stderrDropped,
      stderrLate,
      spooled,
      spoolBytes,
      downSince,
      lastError,
    } = this.audit.status();
    const details: Record<string, string | number | null | object> = {
      state,
      pending,
      buffered,
      dropped,
      quarantined,
      unreadable,
      diffFaults,
      diskTimeouts,
      stderrQueuedBytes,
      stderrDropped,
      stderrLate,
    };
    if (spooled !== undefined) Object.assign(details, { spooled, spoolBytes });
    Object.assign(details, { downSince, lastError: lastError ? `${lastError.code}: ${lastError.message}` : null });
    const integrity = this.sealer.status();
    if (integrity) details.integrity = integrity;
    const partitions = this.partitions?.status();
    if (partitions) details.partitions = partitions;
    return state === 'up' ? indicator.up(details) : indicator.down(details);
  }
}
