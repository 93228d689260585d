import { QueryFailedError } from 'typeorm';
import { connectionSecrets, isContentError, isPartitionRouting, sanitizeDbError, WRITE_TIMEOUT_CODE } from './db-error';

describe('sanitizeDbError', () => {
  const secrets = connectionSecrets({ url: 'postgres://app_user:Sup3r%20Secret@db.internal.example:5432/audit' });

  it('keeps the code and removes URLs, credentials and hosts', () => {
    const error = Object.assign(
      new Error('connect ECONNREFUSED 10.0.0.5:5432 while using postgres://app_user:Sup3r%20Secret@db.internal.example:5432/audit'),
      { code: 'ECONNREFUSED' },
    );
    const { code, message } = sanitizeDbError(error, secrets);
    expect(code).toBe('ECONNREFUSED');
    expect(message).toBe('connect ECONNREFUSED [host] while using [url]');
  });

  it('reports a QueryFailedError by its driver code and message, never its query or parameters', () => {
    const driverError = Object.assign(new Error('permission denied for table audit_log'), { code: '42501' });
    const error = new QueryFailedError('INSERT INTO audit_log VALUES ($1)', ['{"password":"x"}'], driverError);
    expect(sanitizeDbError(error, secrets)).toEqual({
      code: '42501',
      message: 'permission denied for table audit_log (GRANT INSERT, SELECT ON audit_log to the application role)',
    });
  });

  it('removes the literal user, password and host of the DataSource wherever they appear', () => {
    const error = new Error('password authentication failed for user "app_user" at db.internal.example (Sup3r Secret)');
    expect(sanitizeDbError(error, secrets).message).toBe('password authentication failed for user "[redacted]" at [redacted] ([redacted])');
  });

  // Node writes an IPv6 address of a net error without brackets (`address:port`), and the host
  // name of a failed lookup after `getaddrinfo <code> `, whatever its length.
  it.each([
    ['connect ECONNREFUSED ::1:5432', 'connect ECONNREFUSED [host]'],
    ['connect ECONNREFUSED 2001:db8::5:5432', 'connect ECONNREFUSED [host]'],
    ['connect ETIMEDOUT 2001:db8:0:0:0:0:0:5:5432', 'connect ETIMEDOUT [host]'],
    ['connect ETIMEDOUT fe80::1%eth0:5432', 'connect ETIMEDOUT [host]'],
    ['connect ECONNREFUSED [::1]:5432', 'connect ECONNREFUSED [host]'],
    ['connect ECONNREFUSED ::ffff:10.0.0.5:5432', 'connect ECONNREFUSED ::ffff:[host]'],
    ['getaddrinfo ENOTFOUND db', 'getaddrinfo ENOTFOUND [host]'],
    ['getaddrinfo EAI_AGAIN pg', 'getaddrinfo EAI_AGAIN [host]'],
    ['getaddrinfo ENOTFOUND db.internal.example', 'getaddrinfo ENOTFOUND [host]'],
    ['queryA ETIMEOUT db', 'queryA ETIMEOUT [host]'],
    // Not addresses: a cast, a time of day, a library's error code.
    ["invalid input syntax for type uuid: 'a'::uuid at 10:30:45", "invalid input syntax for type uuid: 'a'::uuid at 10:30:45"],
    ['error:1E08010C:DECODER routines::unsupported', 'error:1E08010C:DECODER routines::unsupported'],
  ])('%s → %s', (raw, expected) => {
    expect(sanitizeDbError(new Error(raw), []).message).toBe(expected);
  });

  it('removes an IPv6 host of the connection URL, with or without brackets, and its port', () => {
    const ipv6 = connectionSecrets({ url: 'postgres://ops:pw0rd@[2001:db8::5]:6432/app' });
    expect(sanitizeDbError(new Error('connect ECONNREFUSED 2001:db8::5:6432'), ipv6).message).toBe('connect ECONNREFUSED [host]');
    expect(sanitizeDbError(new Error('no route to 2001:db8::5 (pw0rd)'), ipv6).message).toBe('no route to [redacted] ([redacted])');
    expect(sanitizeDbError(new Error('connect ECONNREFUSED ::1:5432'), connectionSecrets({ host: '::1', port: 5432 })).message).toBe(
      'connect ECONNREFUSED [host]',
    );
  });

  // TypeORM takes the credentials of `replication.master` and `replication.slaves` when replication
  // is configured, and the pg pool takes `extra` as given, over the options TypeORM passes it.
  const refused = new Error('password authentication failed for user "ledger_writer" (pw0rd-1) at primary.internal');
  it.each([
    ['replication.master', { replication: { master: { url: 'postgres://ledger_writer:pw0rd-1@primary.internal:5432/app' }, slaves: [] } }],
    [
      'a replication slave',
      { replication: { master: { host: 'replica.internal' }, slaves: [{ url: 'postgres://ledger_writer:pw0rd-1@primary.internal/app' }] } },
    ],
    [
      'the fields of replication.master',
      { replication: { master: { host: 'primary.internal', username: 'ledger_writer', password: 'pw0rd-1' }, slaves: [] } },
    ],
    [
      'the fields of a second replication slave',
      {
        replication: {
          master: {},
          slaves: [{ host: 'replica.internal' }, { host: 'primary.internal', username: 'ledger_writer', password: 'pw0rd-1' }],
        },
      },
    ],
    ['extra.connectionString', { host: 'localhost', extra: { connectionString: 'postgres://ledger_writer:pw0rd-1@primary.internal/app' } }],
    ['the fields of extra', { extra: { host: 'primary.internal', user: 'ledger_writer', password: 'pw0rd-1' } }],
  ])('removes the user, password and host given in %s', (_where, options) => {
    expect(sanitizeDbError(refused, connectionSecrets(options)).message).toBe(
      'password authentication failed for user "[redacted]" ([redacted]) at [redacted]',
    );
  });

  it('keeps a user, password and host the DataSource options do not give', () => {
    const options = { host: 'localhost', replication: { master: { username: 'app' }, slaves: [] }, extra: { max: 10 } };
    expect(sanitizeDbError(refused, connectionSecrets(options)).message).toBe(refused.message);
  });

  // pg takes PGUSER, PGPASSWORD and PGHOST (and for the user, the system's USER) for what the
  // options it is given leave out: unset, empty, or a connection string without it.
  const environment = { PGUSER: 'ledger_writer', PGPASSWORD: 'pw0rd-1', PGHOST: 'primary.internal', USER: 'deploy_user' };
  it.each([
    ['no credentials', {}, ['ledger_writer', 'pw0rd-1', 'primary.internal']],
    ['a host only', { host: 'replica.internal' }, ['ledger_writer', 'pw0rd-1']],
    ['empty strings', { host: '', username: '', password: '' }, ['ledger_writer', 'pw0rd-1', 'primary.internal']],
    ['a URL without user or password', { url: 'postgres://replica.internal:5432/app' }, ['ledger_writer', 'pw0rd-1']],
    ['a URL without a host', { url: 'postgres:///app' }, ['ledger_writer', 'pw0rd-1', 'primary.internal']],
    // pg reads the URL's fields over the options given beside it.
    [
      'a URL without a user, and a username beside it',
      { url: 'postgres://replica.internal/app', username: 'app' },
      ['ledger_writer', 'pw0rd-1'],
    ],
    ['extra.user and extra.password', { host: 'replica.internal', extra: { user: 'app', password: 'other-pw' } }, []],
    [
      'a replication slave without credentials',
      { replication: { master: { url: 'postgres://app:other-pw@replica.internal/app' }, slaves: [{ host: 'replica.internal' }] } },
      ['ledger_writer', 'pw0rd-1'],
    ],
  ])('takes from the environment what pg takes, with %s', (_given, options, expected) => {
    const secrets = connectionSecrets(options, environment);
    expect(['ledger_writer', 'pw0rd-1', 'primary.internal'].filter((secret) => secrets.includes(secret))).toEqual(expected);
  });

  it("takes the system's USER as the user when neither the options nor PGUSER give one, as pg does", () => {
    expect(connectionSecrets({ host: 'db.internal' }, { USER: 'deploy_user' })).toContain('deploy_user');
    expect(connectionSecrets({ host: 'db.internal' }, { PGUSER: 'ledger_writer', USER: 'deploy_user' })).not.toContain('deploy_user');
    expect(connectionSecrets({ host: 'db.internal', username: 'app' }, { USER: 'deploy_user' })).not.toContain('deploy_user');
  });

  it('takes the user, password and host a URL gives as query parameters, as pg reads them', () => {
    const secrets = connectionSecrets({ url: 'postgres:///app?user=ledger_writer&password=pw0rd-1&host=/var/run/pg-sockets' }, {});
    expect(
      sanitizeDbError(new Error('connect ENOENT /var/run/pg-sockets/.s.PGSQL.5432 for ledger_writer (pw0rd-1)'), secrets).message,
    ).toBe('connect ENOENT [redacted]/.s.PGSQL.5432 for [redacted] ([redacted])');
  });

  it('adds what to do for the failures an operator fixes from the message alone', () => {
    const missing = Object.assign(new Error('relation "audit_log" does not exist'), { code: '42P01' });
    expect(sanitizeDbError(missing, []).message).toBe('relation "audit_log" does not exist (run the CreateAuditLog migration)');
  });

  // 42501 is PostgreSQL's refusal of a privilege, and the code the trail's own functions refuse with:
  // a GRANT on audit_log is the fix of the first kind only.
  it.each([
    ['permission denied for table audit_log', 'GRANT INSERT, SELECT ON audit_log to the application role'],
    ['permission denied for table audit_seal', "GRANT INSERT, SELECT ON audit_seal to the sealer's role (docs/INTEGRITY.md, Roles)"],
    ['permission denied for schema audit', 'grant this role what docs/INTEGRITY.md, Roles lists on schema audit'],
    ['permission denied for sequence audit_log_seq', 'grant this role what docs/INTEGRITY.md, Roles lists on sequence audit_log_seq'],
    ['permission denied for function audit_log_erase', 'GRANT EXECUTE ON FUNCTION audit_log_erase to this role'],
    [
      'audit_log_erase refuses to run while a trigger its owner did not provide is on the tables it writes: grab on audit_log',
      "as the trail's owner, drop each trigger named and revoke TRIGGER on the trail's tables from every role but their owner: docs/RUNBOOK.md, 16",
    ],
    ['audit_log is append-only: UPDATE refused', null],
    ['month 2026-01 holds rows not sealed yet', null],
  ])('42501 %s: the hint fits it', (refusal, hint) => {
    const error = Object.assign(new Error(refusal), { code: '42501' });
    expect(sanitizeDbError(error, []).message).toBe(hint === null ? refusal : `${refusal} (${hint})`);
  });

  it("recognises the erasure's refusal by its text as raised, before a secret inside it is removed", () => {
    const error = Object.assign(
      new Error('audit_log_erase refuses to run while a trigger its owner did not provide is on the tables it writes: grab on audit_log'),
      { code: '42501' },
    );
    expect(sanitizeDbError(error, ['audit']).message).toMatch(/ \(as the trail's owner, drop each trigger named .*\)$/);
  });

  it('removes a secret from the refused object named in the hint too', () => {
    const error = Object.assign(new Error('permission denied for function audit_log_erase'), { code: '42501' });
    expect(sanitizeDbError(error, ['audit']).message).toBe(
      'permission denied for function [redacted]_log_erase (GRANT EXECUTE ON FUNCTION [redacted]_log_erase to this role)',
    );
  });

  it('strips key=value credentials, newlines, and caps the length', () => {
    const { code, message } = sanitizeDbError({ message: `host=db password='a b'\nuser=x ${'y'.repeat(500)}`, code: 'has spaces' }, []);
    expect(code).toBe('ERROR');
    expect(message.startsWith('host=[redacted] password=[redacted] user=[redacted] y')).toBe(true);
    expect(message.length).toBeLessThanOrEqual(301);
  });
});

describe('isContentError', () => {
  const queryFailed = (code: string, constraint?: string) =>
    new QueryFailedError('INSERT INTO audit_log …', [], Object.assign(new Error(`refused (${code})`), { code, constraint }));

  it.each([
    ['22008', 'datetime_field_overflow: timestamp out of range'],
    ['22009', 'invalid_time_zone_displacement_value: an extended ISO year'],
    ['22007', 'invalid_datetime_format'],
    ['22P05', 'untranslatable_character: \\u0000 in jsonb'],
    ['22021', 'character_not_in_repertoire: a NUL byte in text'],
    ['22P02', 'invalid_text_representation: a bad uuid'],
    ['22001', 'string_data_right_truncation'],
    ['23514', 'check_violation: the outcome CHECK'],
    ['23502', 'not_null_violation'],
    ['23505', 'unique_violation on an index other than the id'],
    ['54000', 'program_limit_exceeded: index row too large'],
    ['54001', 'statement_too_complex'],
  ])('%s (%s) is about the data', (code) => {
    expect(isContentError(queryFailed(code, 'audit_log_outcome_check'))).toBe(true);
    expect(isContentError(Object.assign(new Error('plain'), { code, constraint: 'audit_log_outcome_check' }))).toBe(true);
  });

  it("23514 on a partition's own bounds (no constraint name) is about the partitions, not the data", () => {
    const rerouted = queryFailed('23514');
    expect([isContentError(rerouted), isPartitionRouting(rerouted)]).toEqual([false, true]);
    const named = queryFailed('23514', 'audit_log_occurred_at_range');
    expect([isContentError(named), isPartitionRouting(named)]).toEqual([true, false]);
    expect(isPartitionRouting(queryFailed('23502'))).toBe(false);
    expect(isPartitionRouting(undefined)).toBe(false);
  });

  it.each([
    ['57014', 'query_canceled: statement_timeout'],
    ['55P03', 'lock_not_available'],
    ['42501', 'insufficient_privilege'],
    ['42P01', 'undefined_table'],
    ['42703', 'undefined_column'],
    ['57P01', 'admin_shutdown'],
    ['53100', 'disk_full'],
    ['53300', 'too_many_connections'],
    ['40P01', 'deadlock_detected'],
    ['40001', 'serialization_failure'],
    ['25P02', 'in_failed_sql_transaction'],
    ['28P01', 'invalid_password'],
    ['3D000', 'invalid_catalog_name'],
    ['08006', 'connection_failure'],
    ['XX000', 'internal_error'],
    ['P0001', 'raise_exception from a trigger'],
  ])('%s (%s) is about the database', (code) => {
    expect(isContentError(queryFailed(code))).toBe(false);
  });

  it.each([
    ['ECONNREFUSED', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })],
    ['our write timeout', Object.assign(new Error('audit write not committed'), { code: WRITE_TIMEOUT_CODE })],
    ['a code-less error', new Error('Connection terminated unexpectedly')],
    ['a five-letter Node code', Object.assign(new Error('x'), { code: 'EPIPE' })],
    ['a lower-case look-alike', Object.assign(new Error('x'), { code: '22p05' })],
    ['undefined', undefined],
    ['a string', '22008'],
  ])('%s is about the database', (_, error) => {
    expect(isContentError(error)).toBe(false);
  });
});
