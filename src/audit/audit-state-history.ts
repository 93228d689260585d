import { type AuditState } from './audit-circuit';

/**
 * One change of the write path's state.
 *
 * @example
 * const change: AuditStateChange = { at: '2026-12-04T17:00:00.000Z', state: 'down' };
 */
export interface AuditStateChange {
  /** When the state was entered, ISO 8601. */
  at: string;
  state: AuditState;
}

/**
 * Transitions kept at most: a flapping database cannot grow the history without bound.
 *
 * @example
 * new AuditStateHistory('up').since(0).length <= STATE_HISTORY_LIMIT; // true
 */
export const STATE_HISTORY_LIMIT = 500;

/**
 * A bounded record of the write path's state transitions, newest last, for the viewer's chart.
 *
 * @example
 * const history = new AuditStateHistory('up');
 * history.enter('down');
 * history.since(Date.now() - 3_600_000); // the state at the window's start, then each change in it
 */
export class AuditStateHistory {
  private readonly changes: { at: number; state: AuditState }[] = [];

  constructor(initial: AuditState, now = Date.now()) {
    this.changes.push({ at: now, state: initial });
  }

  /** Records `state` when it differs from the current one. */
  enter(state: AuditState, now = Date.now()): void {
    if (this.changes[this.changes.length - 1]?.state === state) return;
    this.changes.push({ at: now, state });
    if (this.changes.length > STATE_HISTORY_LIMIT) this.changes.shift();
  }

  /** The state in force at `start` (stamped `start`), then every change after it, oldest first. */
  since(start: number): AuditStateChange[] {
    const out: AuditStateChange[] = [];
    for (const change of this.changes) {
      if (change.at <= start) out[0] = { at: new Date(start).toISOString(), state: change.state };
      else out.push({ at: new Date(change.at).toISOString(), state: change.state });
    }
    return out;
  }
}
