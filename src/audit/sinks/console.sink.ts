import { Injectable } from '@nestjs/common';
import { type AuditEventLine, type AuditEventName } from './audit-event';
import { formatLines } from './line-parts';
import { STDERR_QUEUE_MAX_BYTES, writeStderrLine } from './stderr-line';

/**
 * The stderr sink: one JSON object per line, written to stderr (never through `console`, whose
 * calls Sentry keeps as breadcrumbs; see {@link writeStderrLine}) so that CloudWatch (or any
 * collector of the process's stderr) keeps a copy of every entry the database did not take.
 * No line exceeds 16 KiB: a larger entry is written in numbered parts that `audit:replay` joins.
 * While stderr's reader is behind, at most `maxQueuedBytes` of lines wait for it in memory (the
 * module passes `bufferMaxBytes`); past that a line is not written, and counted (see
 * {@link writeStderrLine}).
 *
 * @example
 * new ConsoleSink().emit('audit.evicted', 'warn', { auditId, action: 'nda_created' });
 * // {"timestamp":"2026-11-27T10:00:00.000Z","level":"warn","event":"audit.evicted","auditId":…}
 */
@Injectable()
export class ConsoleSink {
  constructor(private readonly maxQueuedBytes = STDERR_QUEUE_MAX_BYTES) {}

  /** False when a line of the event was not written (stderr's queue full, or stderr gone). */
  emit(event: AuditEventName, level: AuditEventLine['level'], fields: Record<string, unknown>): boolean {
    try {
      let written = true;
      for (const line of formatEventLines(event, level, fields)) written = writeStderrLine(line, this.maxQueuedBytes) && written;
      return written;
    } catch {
      // stderr itself is gone (closed pipe): there is nowhere left to say so.
      return false;
    }
  }
}

/**
 * Serializes one event as the lines written to stderr, each within 16 KiB: one line, or for a
 * larger entry numbered parts (see {@link formatLines}). `fields` must already be JSON-safe.
 *
 * @example
 * formatEventLines('audit.buffered', 'warn', { auditId, entry }).forEach((line) => writeStderrLine(line));
 */
export function formatEventLines(
  event: AuditEventName,
  level: AuditEventLine['level'],
  fields: Record<string, unknown>,
  now: Date = new Date(),
): string[] {
  return formatLines({ timestamp: now.toISOString(), level, event, ...fields });
}

/** Serializes one event as a single line, whatever its length (see {@link formatEventLines} for stderr). */
export function formatEventLine(
  event: AuditEventName,
  level: AuditEventLine['level'],
  fields: Record<string, unknown>,
  now: Date = new Date(),
): string {
  const line: AuditEventLine = { timestamp: now.toISOString(), level, event, ...fields };
  return JSON.stringify(line);
}
