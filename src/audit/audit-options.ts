import { type CanActivate, type Type } from '@nestjs/common';
import { AuditConfigError, missingGuardError } from './audit.errors';
import { type AuditDiffOptions, resolveDiffOptions, type ResolvedDiffOptions } from './diffs/diff-options';
import {
  type AuditIntegrityOptions,
  INTEGRITY_DEFAULTS,
  resolveIntegrityOptions,
  type ResolvedIntegrityOptions,
} from './integrity/integrity-options';
import {
  type AuditPartitionOptions,
  PARTITION_DEFAULTS,
  resolvePartitionOptions,
  type ResolvedPartitionOptions,
} from './lifecycle/partition-options';
import { type AuditRetentionOptions, resolveRetentionOptions, type ResolvedRetentionOptions } from './lifecycle/retention-options';
import { type AuditPrivacyOptions, PRIVACY_DEFAULTS, resolvePrivacyOptions, type ResolvedPrivacyOptions } from './privacy/privacy-options';
import { DEFAULT_REDACT_KEYS } from './redaction';

/**
 * The HTTP request as `userIdFrom` sees it: the platform's request object (Express's `Request`
 * with `@nestjs/platform-express`), typed by the parts an extractor usually reads. `user` is what
 * an authentication guard (Passport, say) put there.
 *
 * @example
 * AuditModule.forRoot({ userIdFrom: (request: AuditRequest) => request.user?.sub ?? request.headers['x-user-id']?.toString() });
 */
export interface AuditRequest {
  headers: Record<string, string | string[] | undefined>;
  user?: { id?: string | number; sub?: string | number };
}

/**
 * Returns the acting user's id from the HTTP request: a string, number or bigint. Anything else
 * (the whole `req.user`, say) is stored as null, with one warning per process.
 *
 * @example
 * const fromHeader: UserIdExtractor = (req) => {
 *   const id = req.headers['x-user-id'];
 *   return Array.isArray(id) ? id[0] : id;
 * };
 */
export type UserIdExtractor = (request: AuditRequest) => string | number | bigint | null | undefined;

/**
 * Options of `AuditModule.forRoot()` / `forRootAsync()`. Every field is optional; defaults are
 * listed in {@link AUDIT_DEFAULTS}.
 *
 * @example
 * AuditModule.forRoot({ bufferSize: 5000, writeTimeoutMs: 1000, userIdFrom: (req) => req.user?.id });
 */
export interface AuditModuleOptions {
  /**
   * `async`: requests never wait for the audit write. `sync`: the entry is made when the response
   * is ended (after every interceptor and exception filter, with its final status), and the
   * response's last bytes wait until it is durable (committed, or fsynced to the spool), at most `writeTimeoutMs`
   * plus the spool write (itself bounded by `writeTimeoutMs`). Without `spoolDir`, an entry the
   * database does not take is acknowledged once it is in the ring and its `audit.buffered` line
   * is on stderr: durable only as far as that line is shipped.
   */
  mode?: 'async' | 'sync';
  /**
   * Entries the in-memory ring keeps while the database is down (FIFO eviction); also the most
   * entries queued or in flight to the database while it is up (past it, the failure path).
   */
  bufferSize?: number;
  /** Upper bound of the ring's memory, in bytes of serialized entries; the same bound for entries on their way to the database. */
  bufferMaxBytes?: number;
  /** Entries larger than this, serialized, have `changes`/`metadata` truncated with a marker. */
  maxEntryBytes?: number;
  /** A database write not committed within this time counts as failed. */
  writeTimeoutMs?: number;
  /** Most entries in one multi-row INSERT. */
  batchSize?: number;
  /**
   * Async mode only: how long a batch short of `batchSize` waits, from its oldest entry's `log()`,
   * to gather more entries into one commit (no request waits for it). 0 sends at once; sync mode
   * and `record()` never wait. At most half of `writeTimeoutMs`. Default: 25, or half of
   * `writeTimeoutMs` when that is less.
   */
  batchDelayMs?: number;
  /** First cool-down after a failure before the database is tried again; doubles each failure. */
  retryBackoffMs?: number;
  /** Cap of the doubling cool-down. */
  retryBackoffMaxMs?: number;
  /**
   * Keys whose values are replaced by `[REDACTED]`, case-insensitively: one of five characters or
   * more anywhere in a key (`accessToken` matches `token`), a shorter one as whole words of it
   * (`pin` matches `userPin`, not `shipping`). Also applied to `key=value` text inside strings.
   * Default: `DEFAULT_REDACT_KEYS`.
   */
  redactKeys?: string[];
  /** Returns the acting user's id from the HTTP request. Default: `request.user.id ?? .sub`. */
  userIdFrom?(request: AuditRequest): string | number | bigint | null | undefined;
  /** Register the interceptor that audits every POST, PUT, PATCH and DELETE, and `@Audited` handlers (default true). */
  auditHttp?: boolean;
  /**
   * How long an audited request may take, from its start, to end (its guards, handler, the
   * interceptors and exception filters around it) before its row is written anyway, whether its
   * client went away or is still connected: outcome `failure`, `metadata.reason: "unfinished"`, no
   * status code. Default 60000; set it above the time of your slowest mutating route.
   */
  unfinishedAfterMs?: number;
  /**
   * A local directory for the durable spool: entries evicted from the ring, left at shutdown, or
   * (in sync mode) refused by the database are appended there, fsynced, and replayed on start-up
   * and on recovery. Off (`null`) by default.
   */
  spoolDir?: string | null;
  /** Total size of the spool; past it, entries are dropped with a count and a line. */
  spoolMaxBytes?: number;
  /** Size at which a spool segment file is closed and a new one begun (at most 64 MiB). */
  spoolSegmentBytes?: number;
  /**
   * Entities whose changes are attached to the audit row as before/after diffs (besides those
   * marked with `@AuditedEntity()`), and properties left out of them. See `AuditDiffOptions`.
   */
  diffs?: AuditDiffOptions;
  /**
   * Longest time one read of the trail (`AuditQueryService`: a page, or one batch of an export)
   * may take, in the database and waiting for a connection; past it the read fails with
   * `AUDIT_READ_TIMEOUT` (503 over HTTP). Writes are not affected.
   */
  readTimeoutMs?: number;
  /**
   * Connections of the read side's own pool (made with the audit DataSource's connection
   * options, apart from the pool the writer and the sealer use): reads never take theirs.
   */
  readConnections?: number;
  /**
   * Exports open at once (each holds a read connection while its client reads); one more is
   * refused at once with `AUDIT_READ_BUSY` (503 with `Retry-After` over HTTP). Below
   * `readConnections`, so that pages always have a connection.
   */
  maxExports?: number;
  /** An export whose consumer takes nothing for this long is ended and its connection given back. */
  exportIdleMs?: number;
  /**
   * Sealing of committed rows: row hashes, Merkle roots, seals chained (and signed with a key),
   * each also written as an `audit.sealed` line; checked by `audit-verify`. Off by default.
   */
  integrity?: AuditIntegrityOptions;
  /** The monthly partitions of `audit_log`, created ahead by the module (docs/LIFECYCLE.md): `{ monthsAhead: 3, intervalMs: 3_600_000 }`. */
  partitions?: AuditPartitionOptions;
  /** Retention of whole, sealed months (docs/LIFECYCLE.md): `{ months, legalHold?, intervalMs? }`; off unless given. */
  retention?: AuditRetentionOptions | null;
  /** Personal data kept apart and committed to, so that it can be erased from a sealed trail (docs/PRIVACY.md). Off unless given. */
  privacy?: AuditPrivacyOptions;
}

/**
 * The optional read-only HTTP surface of the trail (`GET /audit…`), given as
 * `AuditModule.forRoot({ http: { guard, path } })` (or next to `useFactory` in `forRootAsync`).
 * Off unless given; the module refuses to start when it is given without a guard.
 *
 * @example
 * AuditModule.forRoot({ http: { guard: AuditorsOnlyGuard, path: 'admin/audit' } });
 */
export interface AuditHttpOptions {
  /** Decides who may read the trail: a `CanActivate` class (resolved in the module, with its dependencies) or instance. */
  guard: Type<CanActivate> | CanActivate;
  /** Route prefix of the controller; default `'audit'`. */
  path?: string;
  /** Serve the audit viewer, a browser page, at `<path>/ui`, behind the same guard; default false. */
  viewer?: boolean;
}

/**
 * Validates the `http` option: a guard is required, and the path is a plain route prefix.
 *
 * @example
 * resolveAuditHttpOptions({ guard: AuditorsOnlyGuard }).path; // 'audit'
 */
export function resolveAuditHttpOptions(http: unknown): Required<AuditHttpOptions> {
  if (http === null || typeof http !== 'object') throw AuditConfigError.invalidOption('http', 'an object { guard, path? }', http);
  const { guard, path = 'audit', viewer = false, ...rest } = http as Partial<AuditHttpOptions>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw AuditConfigError.unknownOption(`http.${unknown}`, ['http.guard', 'http.path', 'http.viewer']);
  if (typeof viewer !== 'boolean') throw AuditConfigError.invalidOption('http.viewer', 'a boolean', viewer);
  const isInstance = typeof guard === 'object' && guard !== null && typeof (guard as CanActivate).canActivate === 'function';
  const isClass = typeof guard === 'function' && typeof (guard as { prototype?: CanActivate }).prototype?.canActivate === 'function';
  if (!isInstance && !isClass) throw missingGuardError(guard);
  if (typeof path !== 'string' || !/^\/?[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*\/?$/.test(path)) {
    throw AuditConfigError.invalidOption('http.path', "a route prefix such as 'audit' or 'admin/audit'", path);
  }
  return { guard: guard as Type<CanActivate> | CanActivate, path: path.replace(/^\/|\/$/g, ''), viewer };
}

/**
 * Options after defaults and validation.
 *
 * @example
 * const writeTimeoutMs = (options: ResolvedAuditOptions): number => options.writeTimeoutMs; // 2000 unless configured
 */
export type ResolvedAuditOptions = Required<
  Omit<AuditModuleOptions, 'userIdFrom' | 'diffs' | 'integrity' | 'partitions' | 'retention' | 'privacy'>
> & {
  userIdFrom: UserIdExtractor;
  diffs: ResolvedDiffOptions;
  integrity: ResolvedIntegrityOptions;
  partitions: ResolvedPartitionOptions;
  retention: ResolvedRetentionOptions;
  privacy: ResolvedPrivacyOptions;
};

/** The async linger's default, in ms: see `batchDelayMs`. */
const DEFAULT_BATCH_DELAY_MS = 25;

/**
 * Default values of every option.
 *
 * @example
 * AUDIT_DEFAULTS.writeTimeoutMs; // 2000
 * AuditModule.forRoot({ bufferSize: AUDIT_DEFAULTS.bufferSize * 4 });
 */
export const AUDIT_DEFAULTS: Readonly<ResolvedAuditOptions> = Object.freeze({
  mode: 'async',
  bufferSize: 1000,
  bufferMaxBytes: 8 * 1024 * 1024,
  maxEntryBytes: 64 * 1024,
  writeTimeoutMs: 2000,
  batchSize: 500,
  batchDelayMs: DEFAULT_BATCH_DELAY_MS,
  retryBackoffMs: 1000,
  retryBackoffMaxMs: 30_000,
  redactKeys: [...DEFAULT_REDACT_KEYS],
  userIdFrom: defaultUserId,
  auditHttp: true,
  unfinishedAfterMs: 60_000,
  spoolDir: null,
  spoolMaxBytes: 1024 ** 3,
  spoolSegmentBytes: 8 * 1024 * 1024,
  diffs: Object.freeze({ entities: [], exclude: {} }),
  readTimeoutMs: 5000,
  readConnections: 4,
  maxExports: 2,
  exportIdleMs: 30_000,
  integrity: INTEGRITY_DEFAULTS,
  partitions: PARTITION_DEFAULTS,
  retention: null,
  privacy: PRIVACY_DEFAULTS,
});

const INTEGER_LIMITS: Record<string, [min: number, max: number]> = {
  bufferSize: [1, 10_000_000],
  bufferMaxBytes: [1024, 4 * 1024 ** 3],
  maxEntryBytes: [1024, 64 * 1024 * 1024],
  writeTimeoutMs: [1, 600_000],
  batchSize: [1, 4000],
  batchDelayMs: [0, 1000],
  retryBackoffMs: [1, 3_600_000],
  retryBackoffMaxMs: [1, 86_400_000],
  spoolMaxBytes: [1024 * 1024, 1024 ** 4],
  // A segment leaves the disk only once all of it is replayed: keep that unit small.
  spoolSegmentBytes: [64 * 1024, 64 * 1024 * 1024],
  readTimeoutMs: [1, 600_000],
  readConnections: [2, 100],
  maxExports: [1, 99],
  exportIdleMs: [100, 3_600_000],
  unfinishedAfterMs: [100, 3_600_000],
};

/**
 * Applies defaults and validates, throwing an {@link AuditConfigError} that names the bad key.
 *
 * @example
 * resolveAuditOptions({ bufferSize: 10 }).writeTimeoutMs; // 2000
 */
export function resolveAuditOptions(input: AuditModuleOptions | undefined): ResolvedAuditOptions {
  const raw: Record<string, unknown> = { ...(input ?? {}) };
  const known = Object.keys(AUDIT_DEFAULTS);
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) throw AuditConfigError.unknownOption(key, known);
    if (raw[key] === undefined) delete raw[key];
  }
  const options = { ...AUDIT_DEFAULTS, ...raw } as ResolvedAuditOptions;
  if (raw.batchDelayMs === undefined && typeof options.writeTimeoutMs === 'number') {
    options.batchDelayMs = Math.min(DEFAULT_BATCH_DELAY_MS, Math.floor(options.writeTimeoutMs / 2));
  }

  if (options.mode !== 'async' && options.mode !== 'sync') throw AuditConfigError.invalidOption('mode', "'async' or 'sync'", options.mode);
  for (const [key, [min, max]] of Object.entries(INTEGER_LIMITS)) {
    const value = (options as unknown as Record<string, unknown>)[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw AuditConfigError.invalidOption(key, `an integer from ${min} to ${max}`, value);
    }
  }
  if (options.retryBackoffMaxMs < options.retryBackoffMs) {
    throw AuditConfigError.invalidOption(
      'retryBackoffMaxMs',
      `at least retryBackoffMs (${options.retryBackoffMs})`,
      options.retryBackoffMaxMs,
    );
  }
  if (options.batchDelayMs * 2 > options.writeTimeoutMs) {
    throw AuditConfigError.invalidOption(
      'batchDelayMs',
      `at most half of writeTimeoutMs (${options.writeTimeoutMs}), so that a lingering batch keeps time to commit`,
      options.batchDelayMs,
    );
  }
  if (options.bufferMaxBytes < options.maxEntryBytes) {
    throw AuditConfigError.invalidOption('bufferMaxBytes', `at least maxEntryBytes (${options.maxEntryBytes})`, options.bufferMaxBytes);
  }
  if (options.maxExports >= options.readConnections) {
    throw AuditConfigError.invalidOption(
      'maxExports',
      `below readConnections (${options.readConnections}), so that pages always have a connection`,
      options.maxExports,
    );
  }
  if (!Array.isArray(options.redactKeys) || options.redactKeys.some((k) => typeof k !== 'string' || k.trim() === '')) {
    throw AuditConfigError.invalidOption('redactKeys', 'an array of non-empty strings', options.redactKeys);
  }
  if (typeof options.userIdFrom !== 'function') {
    throw AuditConfigError.invalidOption('userIdFrom', 'a function (request) => string | number | undefined', options.userIdFrom);
  }
  if (typeof options.auditHttp !== 'boolean') {
    throw AuditConfigError.invalidOption('auditHttp', 'a boolean', options.auditHttp);
  }
  if (options.spoolDir !== null && (typeof options.spoolDir !== 'string' || options.spoolDir.trim() === '')) {
    throw AuditConfigError.invalidOption('spoolDir', 'a directory path or null', options.spoolDir);
  }
  return Object.freeze({
    ...options,
    redactKeys: [...options.redactKeys],
    diffs: resolveDiffOptions(options.diffs),
    integrity: resolveIntegrityOptions(raw.integrity),
    partitions: resolvePartitionOptions(raw.partitions),
    retention: resolveRetentionOptions(raw.retention),
    privacy: resolvePrivacyOptions(raw.privacy),
  });
}

function defaultUserId(request: unknown): string | number | bigint | undefined {
  const user = (request as { user?: { id?: unknown; sub?: unknown } } | undefined)?.user;
  const id = user?.id ?? user?.sub;
  // Anything but an id is passed on as it is, for the normalizer to refuse (and warn about).
  return id === undefined || id === null ? undefined : (id as string);
}
