import { AuditConfigError } from '../audit.errors';

/**
 * The `partitions` option of `AuditModule.forRoot()`: how the module keeps the monthly partitions
 * of `audit_log` ahead of time (see docs/LIFECYCLE.md).
 *
 * @example
 * AuditModule.forRoot({ partitions: { monthsAhead: 6 } });
 */
export interface AuditPartitionOptions {
  /** Partitions kept ready after the current month's (default 3, 0 to 24). */
  monthsAhead?: number;
  /** How often the module checks and creates them, in ms (default 3 600 000: hourly). */
  intervalMs?: number;
}

/** The `partitions` option after defaults and validation. */
export type ResolvedPartitionOptions = Required<AuditPartitionOptions>;

/** Defaults of the `partitions` option. */
export const PARTITION_DEFAULTS: Readonly<ResolvedPartitionOptions> = Object.freeze({ monthsAhead: 3, intervalMs: 3_600_000 });

const LIMITS: Record<keyof ResolvedPartitionOptions, [number, number]> = {
  monthsAhead: [0, 24],
  intervalMs: [1000, 86_400_000],
};

/**
 * Validates the `partitions` option, throwing an {@link AuditConfigError} naming the bad key.
 *
 * @example
 * resolvePartitionOptions({ monthsAhead: 6 }).intervalMs; // 3600000
 */
export function resolvePartitionOptions(input: unknown): ResolvedPartitionOptions {
  if (input === undefined) return PARTITION_DEFAULTS;
  if (!input || typeof input !== 'object' || Array.isArray(input)) {
    throw AuditConfigError.invalidOption('partitions', 'an object such as { monthsAhead: 3 }', input);
  }
  const raw = input as Record<string, unknown>;
  const known = Object.keys(LIMITS);
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) throw AuditConfigError.unknownOption(`partitions.${key}`, known);
  }
  const resolved = { ...PARTITION_DEFAULTS };
  for (const [key, [min, max]] of Object.entries(LIMITS) as [keyof ResolvedPartitionOptions, [number, number]][]) {
    const value = raw[key] ?? resolved[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw AuditConfigError.invalidOption(`partitions.${key}`, `an integer from ${min} to ${max}`, value);
    }
    resolved[key] = value;
  }
  return Object.freeze(resolved);
}
