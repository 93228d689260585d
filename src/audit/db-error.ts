/**
 * A database failure as the module reports it: a code and a message safe to show anywhere.
 *
 * @example
 * const error: SanitizedDbError = { code: '57014', message: 'canceling statement due to statement timeout' };
 */
export interface SanitizedDbError {
  /** SQLSTATE (`57014`), Node error code (`ECONNREFUSED`) or `AUDIT_WRITE_TIMEOUT`. */
  code: string;
  message: string;
}

/** Code of the error raised when a write is not committed within `writeTimeoutMs`. */
export const WRITE_TIMEOUT_CODE = 'AUDIT_WRITE_TIMEOUT';

/** Code of the error raised when a write is not sent because too many earlier ones have not settled. */
export const WRITES_OUTSTANDING_CODE = 'AUDIT_WRITES_OUTSTANDING';

// Schemes, host labels and names bounded as DNS and RFC 3986 bound them in practice: each start
// looks a bounded way ahead, so a message that echoes a long value is read in one pass.
const URL_PATTERN = /\b[a-z][a-z0-9+.-]{0,63}:\/\/[^\s'"]+/gi;
const KEY_VALUE_SECRET = /\b(password|passwd|pwd|user|username|host|hostaddr)\s*=\s*('[^']*'|"[^"]*"|\S+)/gi;
/** An IPv6 address as Node writes it in a net error: without brackets, eight groups or `::` once, a zone after `%`. */
const IPV6 =
  '(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6})?::(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6})?)(?:%[\\w.-]{1,32})?';
/**
 * An address and its port: IPv4, a dotted host name, an IPv6 address in brackets (as a URL writes
 * it, or a host already `[redacted]`) or without (as Node's `connect ECONNREFUSED ::1:5432` does,
 * starting where no address character precedes it).
 */
const HOST_PORT = new RegExp(
  `(?:\\b(?:\\d{1,3}(?:\\.\\d{1,3}){3}|[a-z0-9-]{1,63}(?:\\.[a-z0-9-]{1,63}){1,126})|\\[(?:[0-9a-f:.]{2,45}(?:%[\\w.-]{1,32})?|redacted)\\]|(?<![\\w:.%])${IPV6}):\\d{2,5}\\b(?!\\.\\d)`,
  'gi',
);
/** The host name of a failed lookup, as Node writes it (`getaddrinfo ENOTFOUND db`, `queryA ETIMEOUT db`), whatever its length. */
const LOOKUP_HOST = /\b(getaddrinfo|getHostByAddr|query[A-Za-z]{0,8}) (E[A-Z_]{2,24}) [^\s'"()]{1,253}/g;
const MAX_MESSAGE = 300;

/** What to do about the failures an operator can fix from the message alone. */
const HINTS: Record<string, string> = {
  '42P01': 'run the CreateAuditLog migration',
  '42501': 'GRANT INSERT, SELECT ON audit_log to the application role',
  '28P01': 'check the audit database credentials',
  '3D000': 'the audit database does not exist',
};

/** The start of `audit_log_erase`'s refusal while a trigger the trail's owner did not provide is on its tables (AuditEraseRefusesForeignTriggers1766900000000). */
const FOREIGN_TRIGGER_REFUSAL = 'audit_log_erase refuses to run while a trigger its owner did not provide is on the tables it writes';
const FOREIGN_TRIGGER_HINT =
  "as the trail's owner, drop each trigger named and revoke TRIGGER on the trail's tables from every role but their owner: docs/RUNBOOK.md, 16";
/** PostgreSQL's refusal of a privilege on one object: its kind and its name. */
const DENIED = /^permission denied for (table|function|schema|sequence|view) ([\w$.]{1,127})$/;

/**
 * The hint for `code` and the message as raised. `42501` is both PostgreSQL's refusal of a
 * privilege (`permission denied for …`) and the code the trail's own functions refuse with (an
 * append-only table, a month retention may not remove, a trigger erasure will not run beside):
 * a refused object gets the GRANT that fits it (audit_log the app's, audit_seal the sealer's, a
 * function EXECUTE, anything else the roles' list), and the trail's refusals no GRANT.
 */
function hintOf(code: string, message: string): string | undefined {
  if (code !== '42501') return HINTS[code];
  if (message.startsWith(FOREIGN_TRIGGER_REFUSAL)) return FOREIGN_TRIGGER_HINT;
  const denied = DENIED.exec(message);
  if (!denied) return message.startsWith('permission denied for ') ? HINTS[code] : undefined;
  const [, kind, name] = denied;
  if (kind === 'table' && name === 'audit_log') return HINTS[code];
  if (kind === 'table' && name === 'audit_seal')
    return "GRANT INSERT, SELECT ON audit_seal to the sealer's role (docs/INTEGRITY.md, Roles)";
  if (kind === 'function') return `GRANT EXECUTE ON FUNCTION ${name} to this role`;
  return `grant this role what docs/INTEGRITY.md, Roles lists on ${kind} ${name}`;
}

/** `text` with each of `secrets` (3 characters or more) replaced by `[redacted]`. */
function withoutSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 3) out = out.split(secret).join('[redacted]');
  }
  return out;
}

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
  const raised = typeof rawMessage === 'string' ? rawMessage : String(error);
  // Told by the text as raised: a secret removed from inside it would change it.
  const hint = hintOf(code, raised);
  // URLs first: removing a literal secret inside one would leave the rest of it unrecognisable.
  let message = raised.replace(URL_PATTERN, '[url]').replace(KEY_VALUE_SECRET, '$1=[redacted]');
  message = withoutSecrets(message.replace(LOOKUP_HOST, '$1 $2 [host]'), secrets);
  message = message.replace(HOST_PORT, '[host]').replace(/[\r\n]+/g, ' ');
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE)}…`;
  // The hint may name the refused object: a secret inside its name is removed there too.
  return { code, message: hint ? `${message} (${withoutSecrets(hint, secrets)})` : message };
}

/**
 * SQLSTATE classes in which PostgreSQL refuses a row for what it holds, not for the state of the
 * database: `22` data exception (a value out of range, bad text, a NUL byte…), `23` integrity
 * constraint violation (a CHECK, NOT NULL, a unique index other than the id) and `54` program
 * limit exceeded (an index row too large, a value too deep). Retrying such a row fails the same way.
 */
export const CONTENT_ERROR_CLASSES: readonly string[] = ['22', '23', '54'];

/**
 * True when `error` is PostgreSQL refusing the rows for their content (see
 * {@link CONTENT_ERROR_CLASSES}); false for everything about the database itself: connection
 * errors, timeouts (`57014`, {@link WRITE_TIMEOUT_CODE}), locks (`55P03`), privileges (`42501`),
 * a missing table (`42P01`), shutdown (`57P01`), deadlocks, disk full, and any error without a
 * SQLSTATE. An unknown failure is never a content error, so it takes the outage path and is kept.
 *
 * @example
 * isContentError(queryFailedError); // true for 22008 "timestamp out of range", false for 42501
 */
export function isContentError(error: unknown): boolean {
  const source = (error ?? {}) as { code?: unknown; driverError?: { code?: unknown } };
  const code = source.driverError?.code ?? source.code;
  return (
    typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && CONTENT_ERROR_CLASSES.includes(code.slice(0, 2)) && !isPartitionRouting(error)
  );
}

/**
 * True when `error` is PostgreSQL refusing a row for the partitions it found, not for what the row
 * holds: a `23514` without a constraint name, raised on a partition's own bounds. It comes when a
 * month's partition was attached while the insert, already routed to the default partition,
 * waited for its lock ("violates partition constraint"), or when no partition takes the row
 * ("no partition … found for row", the default partition detached). The row is sound: inserted
 * again, it is routed afresh; a named CHECK constraint (`23514` with a name) is content.
 *
 * @example
 * isPartitionRouting(error); // true for 23514 'new row for relation "audit_log_default" violates partition constraint'
 */
export function isPartitionRouting(error: unknown): boolean {
  const source = (error ?? {}) as { code?: unknown; constraint?: unknown; driverError?: { code?: unknown; constraint?: unknown } };
  const driver = source.driverError ?? source;
  return driver.code === '23514' && (typeof driver.constraint !== 'string' || driver.constraint === '');
}

/**
 * The literal connection secrets of TypeORM DataSource options, for {@link sanitizeDbError}: the
 * `url`, `host`, `username` and `password` of the options, of `replication.master` and of each of
 * `replication.slaves` (where TypeORM takes them with replication configured), and the
 * `connectionString`, `host`, `user` and `password` of `extra` (options the pg pool reads as
 * given), with the host, user and password of each URL (its query parameters' too). And those pg
 * takes from `env` (the process's environment) for what the options of a pool leave out, as it
 * does: `PGUSER`, `PGPASSWORD` and `PGHOST`, and for the user, `PGUSER` unset too, the system's
 * `USER` (`USERNAME` on Windows).
 *
 * @example
 * connectionSecrets({ replication: { master: { url: 'postgres://app:pw0rd@db/a' }, slaves: [] } }); // includes 'app', 'pw0rd', 'db'
 * connectionSecrets({ url: 'postgres://db/a' }, { PGUSER: 'app', PGPASSWORD: 'pw0rd' }); // includes 'app', 'pw0rd', 'db'
 */
export function connectionSecrets(options: object | undefined, env: Readonly<Record<string, string | undefined>> = process.env): string[] {
  const o = record(options);
  const replication = record(o.replication);
  const slaves = Array.isArray(replication.slaves) ? replication.slaves : [];
  const extra = record(o.extra);
  const secrets: string[] = [];
  for (const credentials of [o, record(replication.master), ...slaves.map(record)]) {
    addSecrets(secrets, credentials.url, credentials.host, credentials.username, credentials.password);
  }
  addSecrets(secrets, extra.connectionString, extra.host, extra.user, extra.password);
  // TypeORM makes a pool of the master's and of each slave's credentials with replication, else of the options'.
  const pools = o.replication ? [record(replication.master), ...slaves.map(record)] : [o];
  for (const credentials of pools) addPoolSecrets(secrets, poolConfig(credentials, extra), env);
  return [...new Set(secrets)].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

/** Adds each of the strings given, and the host, user and password of `url`. */
function addSecrets(secrets: string[], url: unknown, ...literals: unknown[]): void {
  for (const value of [url, ...literals]) if (typeof value === 'string') secrets.push(value);
  if (typeof url !== 'string') return;
  try {
    const parsed = new URL(url);
    secrets.push(parsed.hostname, decodeURIComponent(parsed.password), decodeURIComponent(parsed.username), parsed.host);
    // Node writes an IPv6 address without the brackets a URL puts around it.
    if (parsed.hostname.startsWith('[')) secrets.push(parsed.hostname.slice(1, -1));
  } catch {
    // An unparsable URL is still removed whole by the literal match.
  }
}

/** The options TypeORM gives the pg pool of one set of credentials: its own, `extra` over them. */
function poolConfig(credentials: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    connectionString: credentials.url,
    host: credentials.host,
    user: credentials.username,
    password: credentials.password,
    ...extra,
  };
}

/** The environment variable pg reads for each of a connection's secrets its options leave out. */
const PG_VARIABLES = { user: 'PGUSER', password: 'PGPASSWORD', host: 'PGHOST' } as const;

/**
 * Adds the user, password and host pg's `ConnectionParameters` takes for the pool options
 * `config`: a connection string's (its query parameters' too, a socket path's decoded) over the
 * options beside it, and for each it leaves out (unset or empty) its variable from `env`, then for
 * the user the system's user name (pg's default).
 */
function addPoolSecrets(secrets: string[], config: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>): void {
  const connectionString = typeof config.connectionString === 'string' ? config.connectionString : '';
  const given = connectionString ? { ...config, ...connectionStringFields(connectionString) } : config;
  for (const [field, variable] of Object.entries(PG_VARIABLES)) {
    const value = given[field] || env[variable] || (field === 'user' ? env[process.platform === 'win32' ? 'USERNAME' : 'USER'] : undefined);
    if (typeof value === 'string') secrets.push(value);
  }
}

/**
 * The user, password and host pg's parse of a connection string gives: a Unix socket's path
 * (a string starting with `/`) as the host, else those of the URL, its query parameters first,
 * each empty when the URL has none; all empty (taken from the environment) when it is not one.
 */
function connectionStringFields(text: string): Record<string, string> {
  if (text.startsWith('/')) return { host: text.split(' ')[0] };
  const none = { user: '', password: '', host: '' };
  // Without a scheme pg reads it relative to a placeholder URL, whose host is no secret.
  if (!/^[a-z][a-z0-9+.-]*:/i.test(text)) return none;
  try {
    const url = new URL(text, 'postgres://base');
    const param = (name: string) => url.searchParams.get(name) ?? '';
    return {
      user: param('user') || decodeURIComponent(url.username),
      password: param('password') || decodeURIComponent(url.password),
      host: param('host') || decodeURIComponent(url.hostname.replace(/^\[(.+)\]$/, '$1')),
    };
  } catch {
    return none;
  }
}
