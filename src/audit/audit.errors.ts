import { BadRequestException, ServiceUnavailableException } from '@nestjs/common';
import { ACTION_PATTERN } from './audit.constants';

/**
 * Stable codes of the errors the module throws; messages are built only in this file.
 *
 * @example
 * if (error instanceof AuditReadError && error.code === AUDIT_ERROR_CODES.readBusy) retryLater();
 */
export const AUDIT_ERROR_CODES = {
  invalidOption: 'AUDIT_INVALID_OPTION',
  unknownOption: 'AUDIT_UNKNOWN_OPTION',
  invalidAction: 'AUDIT_INVALID_ACTION',
  invalidRepository: 'AUDIT_INVALID_REPOSITORY',
  invalidQuery: 'AUDIT_INVALID_QUERY',
  readFailed: 'AUDIT_READ_FAILED',
  readTimeout: 'AUDIT_READ_TIMEOUT',
  readUnavailable: 'AUDIT_READ_UNAVAILABLE',
  readBusy: 'AUDIT_READ_BUSY',
  exportStalled: 'AUDIT_EXPORT_STALLED',
  erasureInvalid: 'AUDIT_ERASURE_INVALID',
  erasureKeyMissing: 'AUDIT_ERASURE_KEY_MISSING',
  sealerRoleShared: 'AUDIT_SEALER_ROLE_SHARED',
  sealerPrivilege: 'AUDIT_SEALER_PRIVILEGE',
  sealerBusy: 'AUDIT_SEALER_BUSY',
  dbTimeout: 'AUDIT_DB_TIMEOUT',
} as const;

/**
 * One of {@link AUDIT_ERROR_CODES}: the stable `code` of an error the module throws.
 *
 * @example
 * const code: AuditErrorCode = 'AUDIT_READ_TIMEOUT';
 */
export type AuditErrorCode = (typeof AUDIT_ERROR_CODES)[keyof typeof AUDIT_ERROR_CODES];

/**
 * A configuration mistake found at start-up. The message names the offending key or action.
 *
 * @example
 * try { resolveAuditOptions({ bufferSize: 0 }); }
 * catch (e) { (e as AuditConfigError).code; } // 'AUDIT_INVALID_OPTION'
 */
export class AuditConfigError extends Error {
  override readonly name = 'AuditConfigError';

  constructor(
    readonly code: AuditErrorCode,
    message: string,
  ) {
    super(message);
  }

  static invalidOption(key: string, expected: string, got: unknown): AuditConfigError {
    return new AuditConfigError(AUDIT_ERROR_CODES.invalidOption, `AuditModule option "${key}" must be ${expected}, got ${describe(got)}`);
  }

  /** A bad secret (a signing key): the message names the option, never the value. */
  static invalidSecret(key: string, expected: string): AuditConfigError {
    return new AuditConfigError(
      AUDIT_ERROR_CODES.invalidOption,
      `AuditModule option "${key}" must be ${expected} (the value is not shown)`,
    );
  }

  static unknownOption(key: string, known: readonly string[]): AuditConfigError {
    return new AuditConfigError(
      AUDIT_ERROR_CODES.unknownOption,
      `AuditModule option "${key}" is not known; known options: ${known.join(', ')}`,
    );
  }

  static invalidRepository(): AuditConfigError {
    return new AuditConfigError(
      AUDIT_ERROR_CODES.invalidRepository,
      'The AuditLog repository (getRepositoryToken(AuditLog)) must be a TypeORM repository, or a test double with an insert() or save() method',
    );
  }

  static invalidAction(action: unknown, where: string): AuditConfigError {
    return new AuditConfigError(
      AUDIT_ERROR_CODES.invalidAction,
      `Audit action ${describe(action)} on ${where} must match ${ACTION_PATTERN} (e.g. 'nda_created')`,
    );
  }
}

/**
 * A read of the trail asked for something malformed: a bad date, cursor, format or limit;
 * `parameter` names the culprit. A Nest `BadRequestException`: thrown through any controller, it
 * answers 400 with `{ statusCode, error, code, message }`.
 *
 * @example
 * AuditQueryError.invalid('limit', 'an integer from 1 to 500', '0').message;
 * // 'query parameter "limit" must be an integer from 1 to 500, got "0"'
 */
export class AuditQueryError extends BadRequestException {
  override readonly name = 'AuditQueryError';
  readonly code = AUDIT_ERROR_CODES.invalidQuery;

  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super({ statusCode: 400, error: 'Bad Request', code: AUDIT_ERROR_CODES.invalidQuery, message });
  }

  static invalid(parameter: string, expected: string, got: unknown): AuditQueryError {
    return new AuditQueryError(parameter, `query parameter "${parameter}" must be ${expected}, got ${describe(got)}`);
  }

  static unknown(parameter: string, known: readonly string[]): AuditQueryError {
    return new AuditQueryError(parameter, `query parameter "${parameter}" is not known; known parameters: ${known.join(', ')}`);
  }
}

/**
 * A read of the trail that the audit database did not answer: it failed, took longer than
 * `readTimeoutMs`, the database is not connected yet (or the app is shutting down), every export
 * slot is taken (`AUDIT_READ_BUSY`, with `retryAfterSeconds`), or an export's consumer stopped
 * reading (`AUDIT_EXPORT_STALLED`, the stream's error). A Nest `ServiceUnavailableException`:
 * thrown through any controller, it answers 503 with `{ statusCode, error, code, message }`. The
 * message carries no connection string, host or credential.
 *
 * @example
 * AuditReadError.timeout(5000).code; // 'AUDIT_READ_TIMEOUT'
 */
export class AuditReadError extends ServiceUnavailableException {
  override readonly name = 'AuditReadError';
  /** Set when trying again later may succeed (`AUDIT_READ_BUSY`): sent as `Retry-After` over HTTP. */
  readonly retryAfterSeconds?: number;

  constructor(
    readonly code: AuditErrorCode,
    message: string,
  ) {
    super({ statusCode: 503, error: 'Service Unavailable', code, message });
  }

  static failed(cause: { code: string; message: string }): AuditReadError {
    return new AuditReadError(AUDIT_ERROR_CODES.readFailed, `reading the audit trail failed (${cause.code}): ${cause.message}`);
  }

  static timeout(timeoutMs: number): AuditReadError {
    return new AuditReadError(AUDIT_ERROR_CODES.readTimeout, `reading the audit trail took longer than ${timeoutMs} ms`);
  }

  static unavailable(): AuditReadError {
    return new AuditReadError(AUDIT_ERROR_CODES.readUnavailable, 'the audit database is not connected (yet)');
  }

  static closed(): AuditReadError {
    return new AuditReadError(AUDIT_ERROR_CODES.readUnavailable, 'the audit module is shutting down');
  }

  /** Every export slot taken (`maxExports`): come back in `retryAfterSeconds`. */
  static busy(maxExports: number, retryAfterSeconds: number): AuditReadError {
    const error = new AuditReadError(
      AUDIT_ERROR_CODES.readBusy,
      `${maxExports} exports of the audit trail are running, the most at once; retry in ${retryAfterSeconds} s`,
    );
    return Object.assign(error, { retryAfterSeconds });
  }

  /** A page answer while `max` others still hold bytes their clients have not taken. */
  static pagesBusy(max: number, retryAfterSeconds: number): AuditReadError {
    const error = new AuditReadError(
      AUDIT_ERROR_CODES.readBusy,
      `${max} page answers of the audit trail wait for their clients to read them, the most at once; retry in ${retryAfterSeconds} s`,
    );
    return Object.assign(error, { retryAfterSeconds });
  }

  /** An export whose consumer took nothing for `idleMs`: ended, its connection given back. */
  static stalled(idleMs: number): AuditReadError {
    return new AuditReadError(AUDIT_ERROR_CODES.exportStalled, `the export's consumer read nothing for ${idleMs} ms: export ended`);
  }
}

/**
 * An erasure (`AuditService.erase()`, `audit-erase`) that cannot be made as asked: a subject
 * missing or given twice, or no key to make the subject's pseudonym with.
 *
 * @example
 * try { await audit.erase({}); } catch (e) { (e as AuditErasureError).code; } // 'AUDIT_ERASURE_INVALID'
 */
export class AuditErasureError extends Error {
  override readonly name = 'AuditErasureError';

  constructor(
    readonly code: AuditErrorCode,
    message: string,
  ) {
    super(message);
  }

  static invalidSubject(got: unknown): AuditErasureError {
    return new AuditErasureError(
      AUDIT_ERROR_CODES.erasureInvalid,
      `an erasure needs { userId } or { entityType, entityId } (one subject, ids of up to 256 characters), got ${describe(got)}`,
    );
  }

  static keyMissing(): AuditErasureError {
    return new AuditErasureError(
      AUDIT_ERROR_CODES.erasureKeyMissing,
      'an erasure names its subject by a keyed pseudonym: set privacy.pseudonymKey or integrity.entryKeys (AUDIT_PRIVACY_PSEUDONYM_KEY or AUDIT_INTEGRITY_ENTRY_KEY for audit-erase)',
    );
  }
}

/**
 * The module's own work on the audit database (partition upkeep, an erasure) got no answer within
 * its client-side deadline, or was given up at shutdown: a server that accepts and never answers
 * never applies its own `statement_timeout`. Its connection was given up (socket destroyed, out
 * of the pool). The message says whether anything may have been changed.
 *
 * @example
 * try { await audit.erase({ userId: 'u-42' }); } catch (e) { (e as AuditDbTimeoutError).code; } // 'AUDIT_DB_TIMEOUT'
 */
export class AuditDbTimeoutError extends Error {
  override readonly name = 'AuditDbTimeoutError';
  readonly code = AUDIT_ERROR_CODES.dbTimeout;

  private constructor(
    readonly step: 'connect' | 'query' | 'commit' | 'shutdown',
    readonly timeoutMs: number,
    message: string,
  ) {
    super(message);
  }

  /** A step of partition upkeep past its deadline: its transaction is rolled back by the server, nothing was created. */
  static upkeep(step: 'connect' | 'query', timeoutMs: number): AuditDbTimeoutError {
    const what = step === 'connect' ? 'got no connection' : 'got no answer';
    return new AuditDbTimeoutError(step, timeoutMs, `partition upkeep ${what} within ${timeoutMs} ms; its connection was given up`);
  }

  /** A step of an erasure before its COMMIT past its deadline, or given up at shutdown: nothing was erased. */
  static erasure(step: 'connect' | 'query' | 'shutdown', timeoutMs: number): AuditDbTimeoutError {
    const what =
      step === 'shutdown'
        ? 'was given up: the application is shutting down'
        : `${step === 'connect' ? 'got no connection' : 'got no answer'} within ${timeoutMs} ms`;
    return new AuditDbTimeoutError(step, timeoutMs, `the erasure ${what}; nothing was erased (its transaction never committed)`);
  }

  /**
   * A command line tool's connection or round trip past `--timeout-ms` (docs/FAILURES.md, "The
   * commands' deadlines"): its connection was given up, the command exits 3.
   */
  static command(step: 'connect' | 'query', timeoutMs: number): AuditDbTimeoutError {
    const what =
      step === 'connect'
        ? `the database gave no connection within ${timeoutMs} ms`
        : `the database stopped answering: nothing came back for ${timeoutMs} ms, and it did not say that the statement was still running`;
    return new AuditDbTimeoutError(step, timeoutMs, `${what} (--timeout-ms); the connection was given up`);
  }

  /** An erasure's COMMIT sent and never answered: whether it committed is not known. */
  static erasureCommit(timeoutMs: number, erasureId: string): AuditDbTimeoutError {
    return new AuditDbTimeoutError(
      'commit',
      timeoutMs,
      `the erasure's COMMIT got no answer (within ${timeoutMs} ms, or before shutdown): it may or may not have committed. ` +
        `Look for its audit_erasure entry (entity id ${erasureId}); erasing the subject again is safe (rows already erased are counted as such)`,
    );
  }
}

/**
 * The sealer's own role (`integrity.sealerDatabaseUrl`) lacks a privilege sealing needs: each
 * attempt fails with it (an `audit.seal_failed` line) until the grant is made.
 *
 * @example
 * AuditSealerPrivilegeError.missing(['INSERT on "public"."audit_seal"']).code; // 'AUDIT_SEALER_PRIVILEGE'
 */
export class AuditSealerPrivilegeError extends Error {
  override readonly name = 'AuditSealerPrivilegeError';
  readonly code = AUDIT_ERROR_CODES.sealerPrivilege;

  private constructor(message: string) {
    super(message);
  }

  static missing(privileges: readonly string[]): AuditSealerPrivilegeError {
    return new AuditSealerPrivilegeError(
      `the sealer's role (integrity.sealerDatabaseUrl) lacks ${privileges.join(', ')}: nothing is sealed until it is granted (see docs/INTEGRITY.md, "Roles")`,
    );
  }
}

/**
 * One session has held the sealer's lock for longer than any sealing attempt or retention run of
 * this configuration takes (measured for that session alone): each attempt that finds it holding
 * the lock fails with it (an `audit.seal_failed` line), until the lock is free or held by another.
 *
 * @example
 * AuditSealerBusyError.since(600_000, 4242).code; // 'AUDIT_SEALER_BUSY'
 */
export class AuditSealerBusyError extends Error {
  override readonly name = 'AuditSealerBusyError';
  readonly code = AUDIT_ERROR_CODES.sealerBusy;

  private constructor(message: string) {
    super(message);
  }

  static since(ms: number, pid: number | null): AuditSealerBusyError {
    const who = pid === null ? 'a prepared transaction' : `session pid ${pid}`;
    return new AuditSealerBusyError(
      `${who} has held the sealer's lock for ${Math.round(ms / 1000)} s (its transaction's age, or since this sealer first found it): nothing is sealed meanwhile. ` +
        `Find it in pg_stat_activity (pg_locks, locktype 'advisory'); an 'idle in transaction' one is a client that is gone (see docs/RUNBOOK.md)`,
    );
  }
}

/**
 * The start-up warning of a sealer given credentials of its own while the app's role can still
 * append seals: the separation of docs/INTEGRITY.md, "Roles", is not in force. Names each way
 * (`gaps`): a superuser, INSERT on the seal table, the trail's objects owned, or a privilege on its
 * tables that runs the role's code as their owner (TRIGGER, MAINTAIN), by the app's role itself or
 * by a role it is a member of.
 *
 * @example
 * new Logger('AuditModule').warn(
 *   sealerRoleSharedWarning('"public"."audit_seal"', 'app_role', [{ role: 'sealer_role', own: false, superuser: false, insert: true, owns: [], runsAsOwner: [] }]),
 * );
 */
export function sealerRoleSharedWarning(
  sealTable: string,
  appRole: string,
  gaps: readonly {
    role: string;
    own: boolean;
    superuser: boolean;
    insert: boolean;
    owns: readonly string[];
    runsAsOwner: readonly string[];
  }[],
): string {
  const ways = gaps.map((gap) => {
    const held = [
      ...(gap.superuser ? ['is a superuser'] : []),
      ...(gap.insert && !gap.superuser ? [`holds INSERT on ${sealTable}`] : []),
      ...(gap.owns.length > 0 && !gap.superuser ? [`owns ${someOf(gap.owns)}`] : []),
      ...(gap.runsAsOwner.length > 0 && !gap.superuser
        ? [`holds ${someOf(gap.runsAsOwner)}, which runs its code as the trail's owner`]
        : []),
    ].join(' and ');
    return gap.own ? `it ${held}` : `it is a member of ${gap.role}, which ${held}`;
  });
  return (
    `${AUDIT_ERROR_CODES.sealerRoleShared}: integrity.sealerDatabaseUrl is set, but the application's role ${appRole} can still append seals: ${ways.join('; ')}. ` +
    `Whoever holds its credentials can append seals (an owner grants itself INSERT and turns the table's triggers off; a trigger it makes runs as the owner inside the trail's functions), so the separation is not in force ` +
    `(the app's role must hold no INSERT on ${sealTable}, no TRIGGER or MAINTAIN on the trail's tables (never GRANT ALL on them), own none of the trail's tables, functions or schema, and be a member of no role that does: ` +
    `a role of their own owns them; see docs/INTEGRITY.md, "Roles")`
  );
}

/** The first three names, and how many more. */
function someOf(names: readonly string[]): string {
  const shown = names.slice(0, 3).join(', ');
  return names.length > 3 ? `${shown} and ${names.length - 3} more of the trail's objects` : shown;
}

/** The error of an `http` option given without the guard that protects the trail. */
export function missingGuardError(got: unknown): AuditConfigError {
  return AuditConfigError.invalidOption(
    'http.guard',
    'a guard (a CanActivate class or instance): the audit trail is never served without one',
    got,
  );
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'bigint') return `${value}n`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
