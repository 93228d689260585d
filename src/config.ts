import { type EntryKey, parseEntryKeys } from './audit';

/** The example app's configuration, read from environment variables and validated at start-up. */
export interface AppConfig {
  port: number;
  /** NDA data; absent → an embedded PostgreSQL is started under `.data/`. */
  databaseUrl: string | undefined;
  /** Where `audit_log` lives; defaults to `databaseUrl`. */
  auditDatabaseUrl: string | undefined;
  sentryDsn: string | undefined;
  /** The token an auditor sends in `x-auditor-token` to read the trail over HTTP; unset, nobody can. */
  auditHttpToken: string | undefined;
  audit: {
    bufferSize?: number;
    writeTimeoutMs?: number;
    batchDelayMs?: number;
    retryBackoffMs?: number;
    retryBackoffMaxMs?: number;
    auditHttp?: boolean;
    mode?: 'async' | 'sync';
    spoolDir?: string;
    spoolMaxBytes?: number;
    readTimeoutMs?: number;
    readConnections?: number;
    maxExports?: number;
    exportIdleMs?: number;
    /** Present when any `AUDIT_INTEGRITY_*` variable is set. */
    integrity?: {
      enabled?: boolean;
      intervalMs?: number;
      maxRowsPerSeal?: number;
      signingKey?: string;
      entryKeys?: EntryKey[];
      sealerDatabaseUrl?: string;
    };
    /** Present when any `AUDIT_PRIVACY_*` variable is set (docs/PRIVACY.md). */
    privacy?: { personalData?: string[]; pseudonymKey?: string };
  };
}

/** A bad environment variable; the message names it. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

/**
 * Reads and validates the environment.
 *
 * @example
 * loadConfig({ PORT: '8080', AUDIT_BUFFER_SIZE: '5000' }).audit.bufferSize; // 5000
 */
export function loadConfig(env: Env): AppConfig {
  const config: AppConfig = {
    port: integer(env, 'PORT', 1, 65535) ?? 3000,
    databaseUrl: postgresUrl(env, 'DATABASE_URL'),
    auditDatabaseUrl: postgresUrl(env, 'AUDIT_DATABASE_URL'),
    sentryDsn: httpUrl(env, 'SENTRY_DSN'),
    auditHttpToken: token(env, 'AUDIT_HTTP_TOKEN'),
    audit: {
      bufferSize: integer(env, 'AUDIT_BUFFER_SIZE', 1, 10_000_000),
      writeTimeoutMs: integer(env, 'AUDIT_WRITE_TIMEOUT_MS', 1, 600_000),
      batchDelayMs: integer(env, 'AUDIT_BATCH_DELAY_MS', 0, 1000),
      retryBackoffMs: integer(env, 'AUDIT_RETRY_BACKOFF_MS', 1, 3_600_000),
      retryBackoffMaxMs: integer(env, 'AUDIT_RETRY_BACKOFF_MAX_MS', 1, 86_400_000),
      auditHttp: flag(env, 'AUDIT_HTTP'),
      mode: oneOf(env, 'AUDIT_MODE', ['async', 'sync'] as const),
      spoolDir: present(env, 'AUDIT_SPOOL_DIR'),
      spoolMaxBytes: integer(env, 'AUDIT_SPOOL_MAX_BYTES', 1024 * 1024, 1024 ** 4),
      readTimeoutMs: integer(env, 'AUDIT_READ_TIMEOUT_MS', 1, 600_000),
      readConnections: integer(env, 'AUDIT_READ_CONNECTIONS', 2, 100),
      maxExports: integer(env, 'AUDIT_MAX_EXPORTS', 1, 99),
      exportIdleMs: integer(env, 'AUDIT_EXPORT_IDLE_MS', 100, 3_600_000),
      integrity: integrity(env),
      privacy: privacy(env),
    },
  };
  const { retryBackoffMs = 1000, retryBackoffMaxMs } = config.audit;
  if (retryBackoffMaxMs !== undefined && retryBackoffMaxMs < retryBackoffMs) {
    throw new ConfigError(
      `Environment variable AUDIT_RETRY_BACKOFF_MAX_MS must be at least the retry backoff (${retryBackoffMs}), got "${retryBackoffMaxMs}"`,
    );
  }
  return config;
}

/**
 * `AUDIT_INTEGRITY_ENABLED`, `…_INTERVAL_MS`, `…_MAX_ROWS_PER_SEAL`, `…_UNKNOWN_KEY_GRACE_MS`, `…_SIGNING_KEY` (PEM or base64 DER; checked by the module,
 * never echoed), `…_ENTRY_KEY` (`<id>:<secret>`, comma-separated, the signing key first; never echoed),
 * `…_SEALER_DATABASE_URL` (the sealer's own role; checked by the module, never echoed).
 */
function integrity(env: Env): AppConfig['audit']['integrity'] {
  const options = {
    enabled: flag(env, 'AUDIT_INTEGRITY_ENABLED'),
    intervalMs: integer(env, 'AUDIT_INTEGRITY_INTERVAL_MS', 100, 3_600_000),
    maxRowsPerSeal: integer(env, 'AUDIT_INTEGRITY_MAX_ROWS_PER_SEAL', 100, 100_000),
    unknownKeyGraceMs: integer(env, 'AUDIT_INTEGRITY_UNKNOWN_KEY_GRACE_MS', 0, 86_400_000),
    signingKey: present(env, 'AUDIT_INTEGRITY_SIGNING_KEY'),
    entryKeys: entryKeys(env, 'AUDIT_INTEGRITY_ENTRY_KEY'),
    sealerDatabaseUrl: present(env, 'AUDIT_INTEGRITY_SEALER_DATABASE_URL'),
  };
  const set = Object.entries(options).filter(([, value]) => value !== undefined);
  return set.length ? Object.fromEntries(set) : undefined;
}

/** `AUDIT_PRIVACY_PERSONAL_DATA` (paths, comma-separated), `AUDIT_PRIVACY_PSEUDONYM_KEY` (never echoed). */
function privacy(env: Env): AppConfig['audit']['privacy'] {
  const paths = present(env, 'AUDIT_PRIVACY_PERSONAL_DATA');
  const pseudonymKey = present(env, 'AUDIT_PRIVACY_PSEUDONYM_KEY');
  if (paths === undefined && pseudonymKey === undefined) return undefined;
  return {
    ...(paths !== undefined ? { personalData: paths.split(',').map((p) => p.trim()) } : {}),
    ...(pseudonymKey !== undefined ? { pseudonymKey } : {}),
  };
}

function entryKeys(env: Env, name: string): EntryKey[] | undefined {
  const value = present(env, name);
  if (value === undefined) return undefined;
  try {
    return parseEntryKeys(value);
  } catch (error) {
    throw new ConfigError(`Environment variable ${name}: ${(error as Error).message}`);
  }
}

function present(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function integer(env: Env, name: string, min: number, max: number): number | undefined {
  const value = present(env, name);
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || parsed < min || parsed > max) {
    throw new ConfigError(`Environment variable ${name} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return parsed;
}

function token(env: Env, name: string): string | undefined {
  const value = present(env, name);
  // The value is a secret: it is not echoed.
  if (value !== undefined && value.length < 16) throw new ConfigError(`Environment variable ${name} must be at least 16 characters`);
  return value;
}

function oneOf<T extends string>(env: Env, name: string, values: readonly T[]): T | undefined {
  const value = present(env, name);
  if (value === undefined) return undefined;
  if (!(values as readonly string[]).includes(value))
    throw new ConfigError(`Environment variable ${name} must be one of ${values.join(', ')}, got "${value}"`);
  return value as T;
}

function flag(env: Env, name: string): boolean | undefined {
  const value = present(env, name);
  if (value === undefined) return undefined;
  if (value !== 'true' && value !== 'false') throw new ConfigError(`Environment variable ${name} must be true or false, got "${value}"`);
  return value === 'true';
}

function postgresUrl(env: Env, name: string): string | undefined {
  const value = present(env, name);
  if (value === undefined) return undefined;
  if (!/^postgres(ql)?:$/.test(parseUrl(value)?.protocol ?? '')) {
    // The value may hold a password: it is not echoed.
    throw new ConfigError(`Environment variable ${name} must be a postgres:// or postgresql:// URL`);
  }
  return value;
}

function httpUrl(env: Env, name: string): string | undefined {
  const value = present(env, name);
  if (value === undefined) return undefined;
  if (!/^https?:$/.test(parseUrl(value)?.protocol ?? '')) {
    throw new ConfigError(`Environment variable ${name} must be an http:// or https:// URL`);
  }
  return value;
}

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}
