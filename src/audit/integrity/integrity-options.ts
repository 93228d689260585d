import { createPrivateKey, type KeyObject } from 'node:crypto';
import { AuditConfigError } from '../audit.errors';
import { type EntryKey, resolveEntryKeys, type ResolvedEntryKey } from './entry-auth';

/**
 * The `integrity` option of `AuditModule.forRoot()`: sealing of committed rows (see
 * docs/INTEGRITY.md). Off by default.
 *
 * @example
 * AuditModule.forRoot({ integrity: { enabled: true, signingKey: process.env.AUDIT_INTEGRITY_SIGNING_KEY } });
 */
export interface AuditIntegrityOptions {
  /** Seal committed rows and write each seal as an `audit.sealed` line (default false). */
  enabled?: boolean;
  /** How often the sealer looks for rows to seal, in ms (default 5000). */
  intervalMs?: number;
  /** Most rows in one seal; a sealer with more to seal seals again at once (default 20000). */
  maxRowsPerSeal?: number;
  /**
   * How long, in ms, sealing waits before a row whose entry code names a key id the sealer does
   * not hold (a rotation rolling out, or a made-up id): after it, every row naming that id is
   * forged and sealing goes on (default 900000, 15 minutes; 0 to 86400000).
   */
  unknownKeyGraceMs?: number;
  /** An Ed25519 private key (PKCS#8, PEM or base64 DER) that signs each seal. Never logged. */
  signingKey?: string | null;
  /**
   * Keys that authenticate each entry when it is created (HMAC-SHA256, see docs/INTEGRITY.md):
   * the first signs, all verify. The sealer then seals only authentic rows. Never logged; the
   * database never sees them.
   */
  entryKeys?: EntryKey[] | null;
  /**
   * A PostgreSQL URL the sealer (and the module's retention) connects with instead of the app's
   * DataSource: a role of its own that may INSERT into `audit_seal`, which the app's role then
   * may not (see docs/INTEGRITY.md, "Roles"). Never logged. Default null: the app's connection.
   */
  sealerDatabaseUrl?: string | null;
}

/** The `integrity` option after defaults and validation; the key parsed. */
export interface ResolvedIntegrityOptions {
  enabled: boolean;
  intervalMs: number;
  maxRowsPerSeal: number;
  unknownKeyGraceMs: number;
  signingKey: KeyObject | null;
  entryKeys: readonly ResolvedEntryKey[];
  sealerDatabaseUrl: string | null;
}

/** Defaults of the `integrity` option. */
export const INTEGRITY_DEFAULTS: Readonly<ResolvedIntegrityOptions> = Object.freeze({
  enabled: false,
  intervalMs: 5000,
  maxRowsPerSeal: 20_000,
  unknownKeyGraceMs: 900_000,
  signingKey: null,
  entryKeys: [],
  sealerDatabaseUrl: null,
});

const LIMITS: Record<'intervalMs' | 'maxRowsPerSeal' | 'unknownKeyGraceMs', [number, number]> = {
  intervalMs: [100, 3_600_000],
  maxRowsPerSeal: [100, 100_000],
  unknownKeyGraceMs: [0, 86_400_000],
};

/**
 * Validates the `integrity` option, throwing an {@link AuditConfigError} naming the bad key.
 *
 * @example
 * resolveIntegrityOptions({ enabled: true }).intervalMs; // 5000
 */
export function resolveIntegrityOptions(input: unknown): ResolvedIntegrityOptions {
  if (input === undefined) return INTEGRITY_DEFAULTS;
  if (!input || typeof input !== 'object' || Array.isArray(input)) {
    throw AuditConfigError.invalidOption('integrity', 'an object such as { enabled: true }', input);
  }
  const known = ['enabled', 'intervalMs', 'maxRowsPerSeal', 'unknownKeyGraceMs', 'signingKey', 'entryKeys', 'sealerDatabaseUrl'];
  const raw = input as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) throw AuditConfigError.unknownOption(`integrity.${key}`, known);
  }
  const enabled = raw.enabled ?? INTEGRITY_DEFAULTS.enabled;
  if (typeof enabled !== 'boolean') throw AuditConfigError.invalidOption('integrity.enabled', 'a boolean', enabled);
  const numbers = {
    intervalMs: INTEGRITY_DEFAULTS.intervalMs,
    maxRowsPerSeal: INTEGRITY_DEFAULTS.maxRowsPerSeal,
    unknownKeyGraceMs: INTEGRITY_DEFAULTS.unknownKeyGraceMs,
  };
  for (const [key, [min, max]] of Object.entries(LIMITS) as [keyof typeof LIMITS, [number, number]][]) {
    const value = raw[key] ?? numbers[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw AuditConfigError.invalidOption(`integrity.${key}`, `an integer from ${min} to ${max}`, value);
    }
    numbers[key] = value;
  }
  return Object.freeze({
    enabled,
    ...numbers,
    signingKey: parseSigningKey(raw.signingKey),
    entryKeys: resolveEntryKeys(raw.entryKeys),
    sealerDatabaseUrl: parseDatabaseUrl(raw.sealerDatabaseUrl),
  });
}

function parseDatabaseUrl(value: unknown): string | null {
  if (value === undefined || value === null || value === '') return null;
  const expected = 'a postgres:// or postgresql:// URL';
  if (typeof value !== 'string' || !/^postgres(ql)?:\/\/./.test(value))
    throw AuditConfigError.invalidSecret('integrity.sealerDatabaseUrl', expected);
  try {
    new URL(value);
  } catch {
    throw AuditConfigError.invalidSecret('integrity.sealerDatabaseUrl', expected);
  }
  return value;
}

function parseSigningKey(value: unknown): KeyObject | null {
  if (value === undefined || value === null || value === '') return null;
  const expected = 'an Ed25519 private key, PKCS#8 PEM or base64 DER';
  if (typeof value !== 'string') throw AuditConfigError.invalidSecret('integrity.signingKey', expected);
  let key: KeyObject;
  try {
    const text = value.trim();
    key = text.startsWith('-----BEGIN')
      ? createPrivateKey(text)
      : createPrivateKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'pkcs8' });
  } catch {
    throw AuditConfigError.invalidSecret('integrity.signingKey', expected);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw AuditConfigError.invalidSecret('integrity.signingKey', expected);
  return key;
}
