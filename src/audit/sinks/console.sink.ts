import { Injectable } from '@nestjs/common';
import { type AuditEventLine, type AuditEventName } from './audit-event';

/**
 * The stderr sink: one JSON object per line, written with `console.error` so that CloudWatch (or
 * any collector of the process's stderr) keeps a copy of every entry the database did not take.
 *
 * @example
 * new ConsoleSink().emit('audit.evicted', 'warn', { auditId, action: 'nda_created' });
 * // {"timestamp":"2026-11-27T10:00:00.000Z","level":"warn","event":"audit.evicted","auditId":…}
 */
@Injectable()
export class ConsoleSink {
  emit(event: AuditEventName, level: AuditEventLine['level'], fields: Record<string, unknown>): void {
    try {
      console.error(formatEventLine(event, level, fields));
    } catch {
      // stderr itself is gone (closed pipe): there is nowhere left to say so.
    }
  }
}

/** Serializes one event line. `fields` must already be JSON-safe (normalized entries are). */
export function formatEventLine(
  event: AuditEventName,
  level: AuditEventLine['level'],
  fields: Record<string, unknown>,
  now: Date = new Date(),
): string {
  const line: AuditEventLine = { timestamp: now.toISOString(), level, event, ...fields };
  return JSON.stringify(line);
}
