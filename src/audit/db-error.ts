/** A database failure as the module reports it: a code and a message safe to show anywhere. */
export interface SanitizedDbError {
  /** SQLSTATE (`57014`), Node error code (`ECONNREFUSED`) or `AUDIT_WRITE_TIMEOUT`. */
  code: string;
  message: string;
}

/** Code of the error raised when a write is not committed within `writeTimeoutMs`. */
export const WRITE_TIMEOUT_CODE = 'AUDIT_WRITE_TIMEOUT';

const URL_PATTERN = /\b[a-z][a-z0-9+.-]*:\/\/[^\s'"]+/gi;
const KEY_VALUE_SECRET = /\b(password|passwd|pwd|user|username|host|hostaddr)\s*=\s*('[^']*'|"[^"]*"|\S+)/gi;
const HOST_PORT = /\b(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-f:]+\]|[a-z0-9-]+(?:\.[a-z0-9-]+)+):\d{2,5}\b/gi;
const MAX_MESSAGE = 300;

/** What to do about the failures an operator can fix from the message alone. */
const HINTS: Record<string, string> = {
  '42P01': 'run the CreateAuditLog migration',
  '42501': 'GRANT INSERT, SELECT ON audit_log to the application role',
  '28P01': 'check the audit database credentials',
  '3D000': 'the audit database does not exist',
};

/**
 * Reduces any error to a code and a message without connection strings, credentials, hosts,
 * query text or parameters. `secrets` are literal strings (host, user, password of the
 * DataSource) removed wherever they appear.
 *
 * @example
 * sanitizeDbError(new Error('connect ECONNREFUSED 10.0.0.5:5432'), []);
 * // { code: 'ERROR', message: 'connect ECONNREFUSED [host]' }
 */
export function sanitizeDbError(error: unknown, secrets: readonly string[]): SanitizedDbError {
  const source = (error ?? {}) as { code?: unknown; message?: unknown; driverError?: { code?: unknown; message?: unknown } };
  const rawCode = source.driverError?.code ?? source.code;
  const code = typeof rawCode === 'string' && /^[A-Z0-9_]{1,40}$/i.test(rawCode) ? rawCode : 'ERROR';
  // QueryFailedError's own message is the driver's; its `query` and `parameters` are never read.
  const rawMessage = source.driverError?.message ?? source.message;
  // URLs first: removing a literal secret inside one would leave the rest of it unrecognisable.
  let message = (typeof rawMessage === 'string' ? rawMessage : String(error))
    .replace(URL_PATTERN, '[url]')
    .replace(KEY_VALUE_SECRET, '$1=[redacted]');
  for (const secret of secrets) {
    if (secret.length >= 3) message = message.split(secret).join('[redacted]');
  }
  message = message.replace(HOST_PORT, '[host]').replace(/[\r\n]+/g, ' ');
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE)}…`;
  return { code, message: HINTS[code] ? `${message} (${HINTS[code]})` : message };
}

/** The literal connection secrets of TypeORM DataSource options, for {@link sanitizeDbError}. */
export function connectionSecrets(options: object | undefined): string[] {
  const o = (options ?? {}) as Record<string, unknown>;
  const secrets = [o.url, o.password, o.host, o.username].filter((v): v is string => typeof v === 'string');
  if (typeof o.url === 'string') {
    try {
      const url = new URL(o.url);
      secrets.push(url.hostname, decodeURIComponent(url.password), decodeURIComponent(url.username), url.host);
    } catch {
      // An unparsable URL is still removed whole by the literal match above.
    }
  }
  return secrets.filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
}
