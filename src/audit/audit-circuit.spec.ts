import { Logger } from '@nestjs/common';
import { AuditCircuit } from './audit-circuit';
import { AuditEntryNormalizer } from './audit-entry';
import { type AuditEventName, type AuditReporter, type ConsoleSink } from './sinks';

// The circuit alone, on fake timers and with its own jitter: each cool-down is exact.
const T0 = 1_800_000_000_000;
const record = new AuditEntryNormalizer([], 64 * 1024).normalize({
  action: 'nda_created',
  entityType: 'NDA',
  entityId: 'nda-1',
  userId: 'alice',
  changes: { title: 'secret plans' },
}).record;
const refused = Object.assign(new Error('connect ECONNREFUSED 10.9.8.7:5432 as app:hunter2'), { code: 'ECONNREFUSED' });

function setup(backoff = { retryBackoffMs: 100, retryBackoffMaxMs: 400 }, jitter: number[] = []) {
  const lines: { event: AuditEventName; level: string; fields: Record<string, unknown> }[] = [];
  const console = {
    emit: (event: AuditEventName, level: string, fields: Record<string, unknown>) => lines.push({ event, level, fields }),
  } as unknown as ConsoleSink;
  const reporter = {
    writeFailed: jest.fn(),
    recovered: jest.fn(),
    entriesDropped: jest.fn(),
    entriesQuarantined: jest.fn(),
  } satisfies AuditReporter;
  const retryDue = jest.fn();
  const random = jest.fn(() => jitter.shift() ?? 0);
  const circuit = new AuditCircuit(backoff, console, reporter, ['hunter2'], retryDue, random);
  /** Milliseconds from now to the retry the last failure announced. */
  const coolDown = () => Date.parse(lines.filter((l) => l.event === 'audit.db_write_failed').at(-1)?.fields.retryAt as string) - Date.now();
  return { circuit, lines, reporter, retryDue, random, coolDown };
}

beforeEach(() => jest.useFakeTimers({ now: T0 }));
afterEach(() => {
  jest.useRealTimers();
  jest.restoreAllMocks();
});

describe('AuditCircuit', () => {
  it('is up until a write fails, then down with a line and a Sentry warning naming the entry, never its changes', () => {
    const { circuit, lines, reporter } = setup();
    expect(circuit.state).toBe('up');
    expect(circuit.mayRetry).toBe(false);
    circuit.failed(refused, 'write', record, 3, 7);
    expect(circuit.state).toBe('down');
    expect(circuit.downSince).toEqual(new Date(T0));
    expect(circuit.lastError).toEqual({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED [host] as app:[redacted]' });
    expect(lines).toEqual([
      {
        event: 'audit.db_write_failed',
        level: 'error',
        fields: {
          auditId: record.id,
          action: 'nda_created',
          entityType: 'NDA',
          entityId: 'nda-1',
          userId: 'alice',
          attempt: 'write',
          entries: 3,
          error: circuit.lastError,
          retryAt: new Date(T0 + 50).toISOString(),
        },
      },
    ]);
    expect(reporter.writeFailed).toHaveBeenCalledTimes(1);
    expect(reporter.writeFailed).toHaveBeenCalledWith({
      auditId: record.id,
      action: 'nda_created',
      entityType: 'NDA',
      entityId: 'nda-1',
      userId: 'alice',
      error: circuit.lastError,
      attempt: 'write',
      entries: 3,
      buffered: 7,
    });
  });

  it('with privacy on, gives the reporter no actor id (an erasure could not reach it in Sentry); the line keeps it', () => {
    const { lines, reporter } = setup();
    const circuit = new AuditCircuit(
      { retryBackoffMs: 100, retryBackoffMaxMs: 400, privacy: { enabled: true } },
      {
        emit: (event: AuditEventName, level: string, fields: Record<string, unknown>) => lines.push({ event, level, fields }),
      } as unknown as ConsoleSink,
      reporter,
      [],
      jest.fn(),
    );
    circuit.failed(refused, 'write', record, 1, 0);
    expect(reporter.writeFailed).toHaveBeenCalledWith(expect.objectContaining({ auditId: record.id, userId: null }));
    expect(lines[0].fields).toMatchObject({ auditId: record.id, userId: 'alice' });
  });

  it('names no entry for a failed connection attempt', () => {
    const { circuit, lines } = setup();
    circuit.failed(refused, 'connect', undefined, 0, 0);
    expect(lines[0].fields).toMatchObject({
      auditId: null,
      action: null,
      entityType: null,
      entityId: null,
      userId: null,
      attempt: 'connect',
    });
  });

  it('backs off exponentially up to the cap, half of each delay fixed and half the jitter source’s', () => {
    const { circuit, coolDown } = setup({ retryBackoffMs: 100, retryBackoffMaxMs: 400 }, [0, 0.999, 0.5, 0.25, 0.75]);
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      circuit.failed(refused, i === 0 ? 'write' : 'probe', record, 1, 1);
      seen.push(coolDown());
    }
    // Delays 100, 200, 400 (the cap), 400, 400: d/2 + random × d/2, the ISO time cut to the millisecond.
    expect(seen).toEqual([50, 199, 300, 250, 350]);
  });

  it('counts concurrent batches failing while down as one failure for the backoff, and each other attempt as one', () => {
    const { circuit, coolDown, lines } = setup({ retryBackoffMs: 100, retryBackoffMaxMs: 100_000 });
    circuit.failed(refused, 'write', record, 1, 1);
    circuit.failed(refused, 'write', record, 1, 2);
    circuit.failed(refused, 'write', record, 1, 3);
    expect(coolDown()).toBe(50);
    circuit.failed(refused, 'flush', record, 1, 3);
    expect(coolDown()).toBe(100);
    circuit.failed(refused, 'connect', undefined, 0, 3);
    expect(coolDown()).toBe(200);
    expect(lines).toHaveLength(5);
  });

  it('keeps the delay finite after very many failures', () => {
    const { circuit, coolDown } = setup({ retryBackoffMs: 1, retryBackoffMaxMs: 2 ** 40 });
    for (let i = 0; i < 40; i++) circuit.failed(refused, 'probe', record, 1, 1);
    expect(coolDown()).toBe(2 ** 29);
  });

  it('starts again from the first delay once a batch has committed, not when a probe got through', () => {
    const { circuit, coolDown } = setup();
    for (let i = 0; i < 4; i++) circuit.failed(refused, 'probe', record, 1, 1);
    expect(coolDown()).toBe(200);
    circuit.halfOpen();
    expect(circuit.state).toBe('half-open');
    circuit.up();
    expect(circuit.state).toBe('up');
    circuit.failed(refused, 'write', record, 1, 1);
    expect(coolDown()).toBe(200);
    circuit.halfOpen();
    circuit.up();
    circuit.committed();
    circuit.failed(refused, 'write', record, 1, 1);
    expect(coolDown()).toBe(50);
  });

  it('may retry only when down and its cool-down is over, and calls retryDue then, once', () => {
    const { circuit, retryDue } = setup({ retryBackoffMs: 100, retryBackoffMaxMs: 100 });
    circuit.failed(refused, 'write', record, 1, 1);
    jest.advanceTimersByTime(49);
    expect(circuit.mayRetry).toBe(false);
    expect(retryDue).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(circuit.mayRetry).toBe(true);
    expect(retryDue).toHaveBeenCalledTimes(1);
    circuit.halfOpen();
    expect(circuit.mayRetry).toBe(false);
    jest.advanceTimersByTime(10_000);
    expect(retryDue).toHaveBeenCalledTimes(1);
  });

  it('replaces the pending retry when another failure comes, so that one retry is due', () => {
    const { circuit, retryDue } = setup({ retryBackoffMs: 100, retryBackoffMaxMs: 100 });
    circuit.failed(refused, 'write', record, 1, 1);
    jest.advanceTimersByTime(30);
    circuit.failed(refused, 'probe', record, 1, 1);
    jest.advanceTimersByTime(49);
    expect(retryDue).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(retryDue).toHaveBeenCalledTimes(1);
    jest.advanceTimersByTime(1000);
    expect(retryDue).toHaveBeenCalledTimes(1);
  });

  it('schedules no retry once stopped, and cancels the pending one', () => {
    const { circuit, retryDue } = setup();
    circuit.failed(refused, 'write', record, 1, 1);
    circuit.stop();
    jest.advanceTimersByTime(10_000);
    circuit.failed(refused, 'probe', record, 1, 1);
    jest.advanceTimersByTime(10_000);
    expect(retryDue).not.toHaveBeenCalled();
    expect(jest.getTimerCount()).toBe(0);
  });

  it('reports recovery once, when up, with the outage’s totals, and starts the next outage from zero', () => {
    const { circuit, lines, reporter } = setup();
    circuit.recovered();
    expect(lines).toEqual([]);
    circuit.failed(refused, 'write', record, 2, 2);
    jest.advanceTimersByTime(500);
    circuit.failed(refused, 'probe', record, 2, 2);
    circuit.count('dropped', 1);
    circuit.recovered();
    expect(lines.filter((l) => l.event === 'audit.recovered')).toEqual([]);
    circuit.halfOpen();
    circuit.recovered();
    expect(lines.filter((l) => l.event === 'audit.recovered')).toEqual([]);
    circuit.up();
    circuit.count('flushed', 5);
    circuit.count('flushed', 2);
    jest.advanceTimersByTime(250);
    circuit.recovered();
    const totals = { failedAttempts: 2, dropped: 1, flushed: 7, downForMs: 750 };
    expect(lines.filter((l) => l.event === 'audit.recovered')).toEqual([{ event: 'audit.recovered', level: 'info', fields: totals }]);
    expect(reporter.recovered).toHaveBeenCalledWith(totals);
    expect(circuit.downSince).toBeNull();
    circuit.recovered();
    expect(reporter.recovered).toHaveBeenCalledTimes(1);

    jest.advanceTimersByTime(1000);
    circuit.failed(refused, 'write', record, 1, 1);
    expect(circuit.downSince).toEqual(new Date(T0 + 1750));
    jest.advanceTimersByTime(100);
    circuit.failed(refused, 'probe', record, 1, 1);
    expect(circuit.downSince).toEqual(new Date(T0 + 1750));
    circuit.up();
    circuit.recovered();
    expect(reporter.recovered).toHaveBeenLastCalledWith({ failedAttempts: 2, dropped: 0, flushed: 0, downForMs: 100 });
  });

  it('keeps its state and its line when the alert sink throws, and says so in the log', () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const { circuit, lines, reporter } = setup();
    reporter.writeFailed.mockImplementation(() => {
      throw new Error('sentry is down');
    });
    reporter.recovered.mockImplementation(() => {
      throw new Error('sentry is still down');
    });
    expect(() => circuit.failed(refused, 'write', record, 1, 1)).not.toThrow();
    expect(circuit.state).toBe('down');
    circuit.up();
    expect(() => circuit.recovered()).not.toThrow();
    expect(circuit.downSince).toBeNull();
    expect(lines.map((l) => l.event)).toEqual(['audit.db_write_failed', 'audit.recovered']);
    expect(warn.mock.calls.map(([message]) => message as string)).toEqual([
      'audit reporter failed: Error: sentry is down',
      'audit reporter failed: Error: sentry is still down',
    ]);
    expect(warn.mock.contexts.map((logger) => (logger as unknown as { context: string }).context)).toEqual(['AuditModule', 'AuditModule']);
  });
});
