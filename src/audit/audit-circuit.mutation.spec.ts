import { AuditCircuit } from './audit-circuit';
import { type AuditReporter, type ConsoleSink } from './sinks';

// What the mutation run of audit-circuit.ts left alive: the states the viewer's chart reads from its history.
const T0 = 1_800_000_000_000;

beforeEach(() => jest.useFakeTimers({ now: T0 }));
afterEach(() => jest.useRealTimers());

it('AuditCircuit records each state it enters, with its time, in the history the viewer charts', () => {
  const console = { emit: jest.fn() } as unknown as ConsoleSink;
  const reporter = {
    writeFailed: jest.fn(),
    recovered: jest.fn(),
    entriesDropped: jest.fn(),
    entriesQuarantined: jest.fn(),
  } satisfies AuditReporter;
  const circuit = new AuditCircuit({ retryBackoffMs: 100, retryBackoffMaxMs: 400 }, console, reporter, [], jest.fn(), () => 0);
  jest.advanceTimersByTime(1000);
  circuit.failed(new Error('connect ECONNREFUSED'), 'connect', undefined, 0, 0);
  jest.advanceTimersByTime(1000);
  circuit.halfOpen();
  jest.advanceTimersByTime(1000);
  circuit.up();
  circuit.stop();
  expect(circuit.history.since(T0)).toEqual([
    { at: new Date(T0).toISOString(), state: 'up' },
    { at: new Date(T0 + 1000).toISOString(), state: 'down' },
    { at: new Date(T0 + 2000).toISOString(), state: 'half-open' },
    { at: new Date(T0 + 3000).toISOString(), state: 'up' },
  ]);
});
