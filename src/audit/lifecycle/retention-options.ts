import { AuditConfigError } from '../audit.errors';

/**
 * The `retention` option of `AuditModule.forRoot()`: how long whole months of `audit_log` are kept,
 * and the months a legal hold keeps whatever their age (see docs/LIFECYCLE.md). Without it
 * nothing is ever removed.
 *
 * @example
 * AuditModule.forRoot({ retention: { months: 72, legalHold: ['2026-01'] } });
 */
export interface AuditRetentionOptions {
  /** Whole months kept before the current one (UTC), 1 to 1200: a row is kept at least this long after its month ends. */
  months: number;
  /** Months (`YYYY-MM`) never removed while listed, whatever their age. */
  legalHold?: readonly string[];
  /** How often the module applies retention, in ms (default 86 400 000: daily; 60 000 to 2 678 400 000). */
  intervalMs?: number;
  /** Removes the legacy partition too, whole, once its bound leaves the window (default false; see docs/LIFECYCLE.md). */
  legacy?: boolean;
}

/** The `retention` option after defaults and validation; null when retention is off. */
export type ResolvedRetentionOptions = Readonly<{
  months: number;
  legalHold: readonly string[];
  intervalMs: number;
  legacy: boolean;
}> | null;

const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;

/**
 * Validates the `retention` option, throwing an {@link AuditConfigError} naming the bad key.
 *
 * @example
 * resolveRetentionOptions({ months: 12 }); // { months: 12, legalHold: [], intervalMs: 86400000, legacy: false }
 */
export function resolveRetentionOptions(input: unknown): ResolvedRetentionOptions {
  if (input === undefined || input === null) return null;
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw AuditConfigError.invalidOption('retention', "an object such as { months: 72, legalHold: ['2026-01'] }", input);
  }
  const raw = input as Record<string, unknown>;
  const known = ['months', 'legalHold', 'intervalMs', 'legacy'];
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) throw AuditConfigError.unknownOption(`retention.${key}`, known);
  }
  const { months, legalHold = [], intervalMs = 86_400_000, legacy = false } = raw;
  if (typeof months !== 'number' || !Number.isInteger(months) || months < 1 || months > 1200) {
    throw AuditConfigError.invalidOption(
      'retention.months',
      'an integer from 1 to 1200 (whole months kept before the current one)',
      months,
    );
  }
  if (typeof intervalMs !== 'number' || !Number.isInteger(intervalMs) || intervalMs < 60_000 || intervalMs > 2_678_400_000) {
    throw AuditConfigError.invalidOption('retention.intervalMs', 'an integer from 60000 to 2678400000', intervalMs);
  }
  if (typeof legacy !== 'boolean') throw AuditConfigError.invalidOption('retention.legacy', 'true or false', legacy);
  if (!Array.isArray(legalHold))
    throw AuditConfigError.invalidOption('retention.legalHold', "an array of months such as ['2026-01']", legalHold);
  legalHold.forEach((month: unknown, i) => {
    if (typeof month !== 'string' || !MONTH.test(month)) {
      throw AuditConfigError.invalidOption(`retention.legalHold[${i}]`, "a month written YYYY-MM, such as '2026-01'", month);
    }
  });
  return Object.freeze({ months, legalHold: Object.freeze([...new Set(legalHold as string[])].sort()), intervalMs, legacy });
}

/**
 * Reads `--legal-hold` or `AUDIT_RETENTION_LEGAL_HOLD`: months separated by commas.
 *
 * @example
 * parseLegalHold('2026-01, 2026-02'); // ['2026-01', '2026-02']
 */
export function parseLegalHold(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((month) => month.trim())
    .filter((month) => month !== '');
}
