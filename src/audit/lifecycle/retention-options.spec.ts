import { AuditConfigError } from '../audit.errors';
import { resolveAuditOptions } from '../audit-options';
import { parseLegalHold, resolveRetentionOptions } from './retention-options';

describe('resolveRetentionOptions', () => {
  it('is off unless given', () => {
    expect(resolveRetentionOptions(undefined)).toBeNull();
    expect(resolveAuditOptions({}).retention).toBeNull();
  });

  it('takes months, a legal hold (sorted, once each) and an interval, daily by default', () => {
    expect(resolveRetentionOptions({ months: 72, legalHold: ['2026-02', '2026-01', '2026-02'] })).toEqual({
      months: 72,
      legalHold: ['2026-01', '2026-02'],
      intervalMs: 86_400_000,
      legacy: false,
    });
    expect(resolveAuditOptions({ retention: { months: 1, intervalMs: 60_000, legacy: true } }).retention).toEqual({
      months: 1,
      legalHold: [],
      intervalMs: 60_000,
      legacy: true,
    });
  });

  it.each([
    [{}, 'retention.months'],
    [{ months: 0 }, 'retention.months'],
    [{ months: 1201 }, 'retention.months'],
    [{ months: 6.5 }, 'retention.months'],
    [{ months: '12' }, 'retention.months'],
    [{ months: 12, legalHold: '2026-01' }, 'retention.legalHold'],
    [{ months: 12, legalHold: ['2026-1'] }, 'retention.legalHold[0]'],
    [{ months: 12, legalHold: ['2026-01', '2026-13'] }, 'retention.legalHold[1]'],
    [{ months: 12, intervalMs: 1000 }, 'retention.intervalMs'],
    [{ months: 12, keep: 3 }, 'retention.keep'],
    [{ months: 12, legacy: 'yes' }, 'retention.legacy'],
    [12, 'retention'],
  ])('refuses %p at start, naming %s', (input, key) => {
    expect(() => resolveAuditOptions({ retention: input as never })).toThrow(AuditConfigError);
    expect(() => resolveAuditOptions({ retention: input as never })).toThrow(`"${key}"`);
  });
});

describe('parseLegalHold', () => {
  it('reads months separated by commas', () => {
    expect(parseLegalHold(' 2026-01,2026-02 ,')).toEqual(['2026-01', '2026-02']);
    expect(parseLegalHold(undefined)).toEqual([]);
  });
});
