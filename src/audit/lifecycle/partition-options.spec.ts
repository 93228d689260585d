import { AuditConfigError } from '../audit.errors';
import { PARTITION_DEFAULTS, resolvePartitionOptions } from './partition-options';

describe('resolvePartitionOptions', () => {
  it('defaults to three months ahead, checked hourly', () => {
    expect(resolvePartitionOptions(undefined)).toEqual({ monthsAhead: 3, intervalMs: 3_600_000 });
    expect(resolvePartitionOptions({})).toEqual(PARTITION_DEFAULTS);
  });

  it('takes values within the limits', () => {
    expect(resolvePartitionOptions({ monthsAhead: 0, intervalMs: 1000 })).toEqual({ monthsAhead: 0, intervalMs: 1000 });
    expect(resolvePartitionOptions({ monthsAhead: 24 }).monthsAhead).toBe(24);
  });

  it.each([
    [{ monthsAhead: 25 }, 'partitions.monthsAhead'],
    [{ monthsAhead: -1 }, 'partitions.monthsAhead'],
    [{ monthsAhead: 1.5 }, 'partitions.monthsAhead'],
    [{ intervalMs: 999 }, 'partitions.intervalMs'],
    [{ intervalMs: '60000' }, 'partitions.intervalMs'],
    [{ months: 3 }, 'partitions.months'],
    ['3', 'partitions'],
  ])('refuses %p, naming %s', (input, key) => {
    expect(() => resolvePartitionOptions(input)).toThrow(AuditConfigError);
    expect(() => resolvePartitionOptions(input)).toThrow(key);
  });
});
