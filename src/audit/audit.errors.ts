import { ACTION_PATTERN } from './audit.constants';

/** Stable codes of the errors the module throws; messages are built only in this file. */
export const AUDIT_ERROR_CODES = {
  invalidOption: 'AUDIT_INVALID_OPTION',
  unknownOption: 'AUDIT_UNKNOWN_OPTION',
  invalidAction: 'AUDIT_INVALID_ACTION',
  invalidRepository: 'AUDIT_INVALID_REPOSITORY',
} as const;

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
