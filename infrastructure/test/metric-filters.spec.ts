import { Template } from 'aws-cdk-lib/assertions';
import { AUDIT_EVENTS } from '../../src/audit/sinks/audit-event';
import { ConsoleSink } from '../../src/audit/sinks/console.sink';
import { AuditObservabilityStack } from '../lib/audit-observability-stack';
import { matchesLine, parseFilterPattern } from './filter-pattern';
import { tempApps } from './temp-app';

const newApp = tempApps();

/** The event names operators, alarms and the runbook rely on; renaming one is a breaking change. */
const CONTRACT: Record<string, string> = {
  DbWriteFailed: 'audit.db_write_failed',
  Dropped: 'audit.dropped',
  Evicted: 'audit.evicted',
  FlushFailed: 'audit.flush_failed',
  Quarantined: 'audit.quarantined',
  SealFailed: 'audit.seal_failed',
  ChainBroken: 'audit.chain_broken',
  DiffFailed: 'audit.diff_failed',
  Forged: 'audit.forged',
};

interface SynthesizedFilter {
  metricName: string;
  pattern: string;
}

function synthesizedFilters(): SynthesizedFilter[] {
  const stack = new AuditObservabilityStack(newApp(), 'Audit', { environment: 'prod' });
  const resources = Template.fromStack(stack).findResources('AWS::Logs::MetricFilter');
  return Object.values(resources).map(({ Properties }) => ({
    metricName: Properties.MetricTransformations[0].MetricName,
    pattern: Properties.FilterPattern,
  }));
}

/** The stderr lines the module writes: one per event, plus decoys naming events in other fields. */
function moduleLines(): string[] {
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const sink = new ConsoleSink();
    const context = {
      auditId: '0190a6e4-0000-7000-8000-000000000001',
      action: 'nda_created',
      userId: 'u-1',
    };
    for (const event of Object.values(AUDIT_EVENTS)) {
      sink.emit(event, 'warn', { ...context, error: 'ECONNREFUSED' });
    }
    sink.emit(AUDIT_EVENTS.buffered, 'warn', {
      ...context,
      action: 'audit.dropped',
      error: 'audit.db_write_failed',
      entry: { event: 'audit.evicted', metadata: { event: 'audit.flush_failed' } },
    });
    // One write a line, newline-terminated: CloudWatch Logs takes each line as one event.
    return stderr.mock.calls.map(([line]) => String(line).replace(/\n$/, ''));
  } finally {
    stderr.mockRestore();
  }
}

describe('metric filters against the stderr lines of the module', () => {
  const filters = synthesizedFilters();
  const lines = [...moduleLines(), '[Nest] 42  - ERROR [AuditService] audit.db_write_failed'];

  it('has one filter per contract event', () => {
    expect(filters.map((filter) => filter.metricName).sort()).toEqual(Object.keys(CONTRACT).sort());
  });

  it.each(Object.entries(CONTRACT))('%s counts exactly the %s lines', (metricName, event) => {
    const filter = filters.find((candidate) => candidate.metricName === metricName);
    const pattern = parseFilterPattern(filter!.pattern);
    const expected = lines.filter((line) => line.startsWith('{') && JSON.parse(line).event === event);

    expect(expected).toHaveLength(1);
    expect(lines.filter((line) => matchesLine(pattern, line))).toEqual(expected);
  });
});

describe('the filter pattern evaluator', () => {
  it('matches nested paths exactly and never a non-object line', () => {
    const pattern = parseFilterPattern('{ $.a.b = "x" }');
    expect(pattern).toEqual({ path: ['a', 'b'], value: 'x' });
    expect(matchesLine(pattern, '{"a":{"b":"x"}}')).toBe(true);
    expect(matchesLine(pattern, '{"a":{"b":"X"}}')).toBe(false);
    expect(matchesLine(pattern, '{"a":{"b":"xy"}}')).toBe(false);
    expect(matchesLine(pattern, '{"a":["x"]}')).toBe(false);
    expect(matchesLine(pattern, '"x"')).toBe(false);
    expect(matchesLine(pattern, 'a.b = x')).toBe(false);
  });

  it.each([
    '{ $.event != "audit.dropped" }',
    '{ $.event = "audit.*" }',
    '{ $.count = 1 }',
    '{ ($.event = "a") && ($.level = "warn") }',
    '{ $.list[0] = "a" }',
    'audit.dropped',
    '',
  ])('refuses the pattern %j', (pattern) => {
    expect(() => parseFilterPattern(pattern)).toThrow(/Unsupported filter pattern/);
  });
});
